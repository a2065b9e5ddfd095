"""In CI (CI=true) a test that cannot run fails instead of skipping (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPING = '''
import pytest

def test_needs_a_browser():
    pytest.skip("no browser here")

@pytest.mark.shared_data
def test_reads_shared_data():
    pytest.skip("../shared/data is absent")
'''


def _run(tmp_path, ci: str) -> str:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = {**os.environ, "CI": ci}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_skipping.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return done.stdout.strip().splitlines()[-1]


def test_a_skip_fails_the_run_in_ci(tmp_path):
    assert _run(tmp_path, "true").startswith("1 failed, 1 skipped")


def test_a_skip_is_a_skip_outside_ci(tmp_path):
    assert _run(tmp_path, "").startswith("2 skipped")
