"""A run killed with SIGKILL resumes: nothing recorded is redone, nothing is lost, the results match."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.evaluation.datasets import load_dataset
from assistant.evaluation.evaluate import evaluate
from assistant.evaluation.runner import RunOptions
from tests.fixtures_models import openai_settings_for
from tests.helpers.datasets import ImageBook, OracleModel, make_mvtec
from tests.helpers.fake_openai import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[1]
ITEMS = 12
LONG_SIDE = 160


@pytest.fixture(scope="module")
def eval_home(tmp_path_factory):
    from knowledge.store import KnowledgeBase

    path = tmp_path_factory.mktemp("resume_home")
    (path / "config.toml").write_text(f"image_long_side = {LONG_SIDE}\n")  # small pictures: fast tests
    KnowledgeBase.open(load_settings({"home": str(path)}, env={}).kb_dir).close()
    return path


def _records(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and len(path.read_bytes().splitlines()) >= count:
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended early: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    raise AssertionError(f"no {count} results within {timeout} s")


def _comparable(records: list[dict]) -> dict:
    return {r["key"]: {k: v for k, v in r.items() if k != "seconds"} for r in records}


def test_killed_run_resumes_without_redoing_or_losing_work(eval_home, tmp_path):
    root = make_mvtec(tmp_path / "data", classes=("capsule", "pill"), train=2, good=3, bad=3)
    out = tmp_path / "out"
    results = out / "results.jsonl"
    oracle = OracleModel(ImageBook(root, LONG_SIDE))
    with FakeOpenAIServer() as server:
        server.set_default(oracle, delay=0.25)
        command = [sys.executable, "-m", "assistant", "--home", str(eval_home), "eval", str(root), "--format", "mvtec",
                   "--backend", "openai", "--base-url", server.url + "/v1", "--strategies", "rules+reference",
                   "--ref-choice", "first", "--concurrency", "2", "--out", str(out), "--quiet"]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _wait_for_lines(results, 3, process)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        time.sleep(0.5)  # the server's handlers read to the end of what the killed process had sent
        cut = server.take_malformed()  # a request the kill cut off in mid-send reaches the server torn
        assert all(line.endswith("the body is not a JSON object") for line in cut), cut
        first = _records(results)
        assert 3 <= len(first) < ITEMS
        with results.open("ab") as handle:
            handle.write(b'{"key": "capsule/test/bad/00')  # a torn line, as a kill in mid-write leaves
        asked_before = len(oracle.seen)
        finished = subprocess.run(command, cwd=REPO, capture_output=True, timeout=120)
        assert finished.returncode == 0, finished.stderr.decode()[-2000:]
        redone = {s["query"] for s in oracle.seen[asked_before:]}

        settings = openai_settings_for(server, eval_home, backend="openai")
        options = RunOptions(["rules+reference"], ref_choice="first", concurrency=4, progress=False)
        uninterrupted = evaluate(load_dataset(root, "mvtec"), settings, _kb(eval_home), options, tmp_path / "again")

    resumed = _records(results)
    keys = [r["key"] for r in resumed]
    assert len(keys) == len(set(keys)) == ITEMS  # none twice, none lost
    assert not redone & {r["item"] for r in first}  # nothing recorded before the kill was asked again
    assert _comparable(resumed) == _comparable(uninterrupted.outcome.rows)


def _kb(home):
    from knowledge.store import KnowledgeBase

    return KnowledgeBase.open(load_settings({"home": str(home)}, env={}).kb_dir)
