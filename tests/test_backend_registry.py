"""A new backend is one module and its registration: the README's "Add a backend" example, run as it
is written, is taken up by the CLI, the configuration, `auto`, the app's settings and the cost table
with no edit of their own, and talks to a local OpenAI-compatible server."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from assistant.backends.registry import BACKENDS, backend_names, create_backend, resolve
from assistant.config import Secret, load_settings
from tests.fixtures_models import ask

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The Python block of the README's "Add a backend" section."""
    section = README.read_text(encoding="utf-8").split("### Add a backend", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def acme(tmp_path, monkeypatch):
    """The README's module, imported from a folder of its own; unregistered afterwards."""
    (tmp_path / "acme_backend.py").write_text(readme_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("acme_backend")
    yield module.AcmeBackend
    BACKENDS.pop("acme", None)
    sys.modules.pop("acme_backend", None)


def settings(home, **env):
    return load_settings({"home": str(home)}, env=env)


def test_the_cli_offers_the_new_backend(acme):
    from assistant.cli import build_parser

    args = build_parser().parse_args(["ask", "part.png", "--backend", "acme"])
    assert args.backend == "acme" and "acme" in backend_names()


def test_its_key_is_read_from_its_environment_variable_and_the_config_file(acme, tmp_path):
    from_env = settings(tmp_path, ACME_API_KEY="k-env")
    assert isinstance(from_env.acme_api_key, Secret) and from_env.acme_api_key.reveal() == "k-env"
    (tmp_path / "config.toml").write_text('acme_api_key = "k-file"\n')
    assert settings(tmp_path).acme_api_key.reveal() == "k-file"


def test_auto_chooses_it_once_it_is_configured_and_it_talks_to_its_server(acme, tmp_path, openai_server):
    assert resolve(settings(tmp_path)) == "offline"
    configured = settings(tmp_path, ACME_API_KEY="acme.test-key", ACME_BASE_URL=openai_server.url + "/v1")
    assert resolve(configured) == "acme"
    backend = create_backend(configured)
    assert backend.complete(ask()).text and backend.model == "acme-vision-1"
    assert openai_server.last_request.credential_is("authorization", "acme.test-key")


def test_its_cloud_needs_its_key(acme, tmp_path):
    from tools.errors import ConfigError

    with pytest.raises(ConfigError, match="no Acme API key: set ACME_API_KEY"):
        create_backend(settings(tmp_path), "acme")


def test_the_cost_table_and_the_app_know_it(acme, tmp_path):
    from assistant.evaluation.costs import estimate_cost
    from ui import _keys_status

    assert estimate_cost("acme", "acme-vision-1", {"input_tokens": 1_000_000, "output_tokens": 250_000}) == \
        pytest.approx(2.0)
    assert "Acme key: set ✓" in _keys_status(settings(tmp_path, ACME_API_KEY="k"))


def test_an_unknown_backend_names_the_choices(tmp_path):
    from tools.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown backend 'nope'; choose one of: auto, gemini, offline, openai"):
        create_backend(settings(tmp_path), "nope")
