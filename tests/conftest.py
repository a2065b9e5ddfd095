"""Test-wide guards: no network beyond loopback, no real keys, a private data dir per test."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

for _var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "ANOMALY_CHAT_HOME",
             "ANOMALY_CHAT_CHROMA_URL", "ANOMALY_CHAT_CONFIG", "ANOMALY_CHAT_BACKEND"):
    os.environ.pop(_var, None)
os.environ.update({"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "ANONYMIZED_TELEMETRY": "False", "MPLBACKEND": "Agg"})


class NonLoopbackConnection(AssertionError):
    """A test tried to reach something other than this machine."""


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: only loopback names are allowed


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded(real):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NonLoopbackConnection(f"test tried to connect to {address!r}; tests may only use loopback")
        return real(self, address)

    return connect


socket.socket.connect = _guarded(_real_connect)
socket.socket.connect_ex = _guarded(_real_connect_ex)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private ANOMALY_CHAT_HOME for one test."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("ANOMALY_CHAT_HOME", str(path))
    return path


# Fixture modules owned by each layer's tests (kept apart so that each layer's fixtures stay small).
pytest_plugins = [name for name in ("tests.fixtures_knowledge", "tests.fixtures_models")
                  if __import__("importlib.util").util.find_spec(name) is not None]


# In CI (CI=true) a test that cannot run is a failure, not a skip: a missing browser, package or
# server must not turn a red run green. Tests that read ../shared/data (real data beside the
# project, absent on a fresh machine) are the one exception: they carry @pytest.mark.shared_data.
def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("shared_data") is None:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must not happen: {_skip_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"module skipped in CI, which must not happen: {_skip_reason(report)}"
