"""Faults: a failing or silent model server, a full disk during an export, SIGKILL during `kb import`.

The chat (a Conversation, as the app runs it) shows one line for a failure and answers the next
message; an export that cannot be written leaves nothing behind; an import killed at any moment
leaves a store that opens consistent, keeps every rule it had, and takes the same import again.
A killed evaluation run resuming is tests/test_eval_resume.py; a Chroma server that goes away is
tests/test_faults_chroma.py.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from assistant.app.access import SINGLE_USER
from assistant.app.conversation import Conversation
from assistant.cli import main
from knowledge.store import KnowledgeBase
from tests.fixtures_models import openai_settings_for
from tests.helpers.defects import jitter, textured_part
from tools.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fault-pictures")
    base = textured_part(size=160, seed=7)
    paths = {f"ref{i}": folder / f"ref{i}.png" for i in range(3)} | {"query": folder / "query.png"}
    for i, path in enumerate(paths.values()):
        jitter(base, seed=30 + i).save(path)
    return paths


@pytest.fixture(scope="module")
def kb(tmp_path_factory, pictures) -> KnowledgeBase:
    store = KnowledgeBase.open(tmp_path_factory.mktemp("fault-kb"))
    store.add_reference("widget", pictures["ref0"])
    yield store
    store.close()


# -- the model server fails or stays silent: one line in the chat, and the next message works ----------
def _conversation(settings, kb, tmp_path) -> Conversation:
    return Conversation(settings, SINGLE_USER, lambda: kb, tmp_path / "chat-files")


def _last_reply(conversation: Conversation, text: str, files=()) -> str:
    *_, messages = conversation.turn(text, [str(f) for f in files], class_name="widget")
    content = messages[-1]["content"]
    return content if isinstance(content, str) else " ".join(p for p in content if isinstance(p, str))


def test_model_server_errors_show_one_line_in_the_chat_and_the_next_message_works(
        openai_server, kb, pictures, tmp_path, fast_backoff):
    settings = openai_settings_for(openai_server, tmp_path, backend="openai", max_retries=1)
    conversation = _conversation(settings, kb, tmp_path)
    for _ in range(2):
        openai_server.enqueue_error(503, {"error": {"message": "overloaded\nplease retry"}})
    failed = _last_reply(conversation, "is anything wrong?", [pictures["query"]])
    assert failed.startswith("⚠️ the model backend failed: openai request failed after 2 attempts: HTTP 503")
    assert "\n" not in failed
    assert "NORMAL" in _last_reply(conversation, "and now?", [pictures["query"]])


def test_a_silent_model_server_times_out_with_one_line_and_the_next_message_works(
        openai_server, kb, pictures, tmp_path, fast_backoff):
    settings = openai_settings_for(openai_server, tmp_path, backend="openai", max_retries=1, request_timeout_s=0.5)
    conversation = _conversation(settings, kb, tmp_path)
    for _ in range(2):
        openai_server.enqueue_delay(3.0)
    failed = _last_reply(conversation, "is anything wrong?", [pictures["query"]])
    assert "no answer from 127.0.0.1" in failed and "within 0.5 s" in failed and "\n" not in failed
    assert "NORMAL" in _last_reply(conversation, "and now?", [pictures["query"]])


# -- a full disk during an export ---------------------------------------------------------------------
def fill_the_disk(monkeypatch) -> None:
    """From now on every file written into a zip fails as on a full disk (after the archive was started)."""
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(zipfile.ZipFile, "write", no_space)
    monkeypatch.setattr(zipfile.ZipFile, "writestr", no_space)


def test_export_on_a_full_disk_leaves_no_partial_file_and_says_why(kb, tmp_path, monkeypatch):
    fill_the_disk(monkeypatch)
    with pytest.raises(InputError) as caught:
        kb.export(tmp_path / "kb.zip")
    assert "No space left on device" in str(caught.value) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_export_on_a_full_disk_keeps_the_previous_export_intact(kb, tmp_path, monkeypatch):
    target = tmp_path / "kb.zip"
    kb.export(target)
    before = target.read_bytes()
    fill_the_disk(monkeypatch)
    with pytest.raises(InputError, match="No space left on device"):
        kb.export(target)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["kb.zip"]


def test_cli_export_on_a_full_disk_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    KnowledgeBase.open(tmp_path / "home" / "knowledge").close()
    fill_the_disk(monkeypatch)
    code = main(["--home", str(tmp_path / "home"), "kb", "export", str(tmp_path / "kb.zip")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "No space left on device" in err
    assert not list(tmp_path.glob("kb.zip*"))


# -- SIGKILL during `anomaly-chat kb import` ----------------------------------------------------------
STALLED_IMPORT = """
    import sys, time
    import numpy as np
    import knowledge.embedding as embedding
    import knowledge.files as files
    import knowledge.rules as rules
    from assistant.cli import main

    # The child only has to write; a fixed vector spares it loading the text model.
    embedding.embed_texts = lambda texts, model_path=None: [np.full(384, 384 ** -0.5, np.float32) for _ in texts]

    def stall_after(owner, name):
        real = getattr(owner, name)
        def stalled(*args, **kwargs):
            real(*args, **kwargs)
            print("stalled", flush=True)
            time.sleep(120)
        setattr(owner, name, stalled)

    home, archive, moment = sys.argv[1:4]
    stall_after(*{"after_a_file": (files.FileStore, "adopt"), "after_the_rules": (rules.RuleBook, "put")}[moment])
    main(["--home", home, "kb", "import", archive])
"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory, pictures) -> Path:
    """An export holding 12 rules and 3 references of class 'gadget'."""
    folder = tmp_path_factory.mktemp("export")
    source = KnowledgeBase.open(folder / "source")
    source.add_rules("gadget", [f"Gadget rule number {i} holds." for i in range(12)])
    for i in range(3):
        source.add_reference("gadget", pictures[f"ref{i}"])
    source.export(folder / "gadget.zip")
    source.close()
    return folder / "gadget.zip"


def _assert_consistent(kb: KnowledgeBase) -> None:
    """No record without its file, no file without a record, no leftovers under tmp/."""
    referenced = {s.path for c in kb.classes() for s in kb.references(c)}
    stored = set((kb.path / "files").rglob("*.*")) if (kb.path / "files").exists() else set()
    assert stored == referenced and all(p.is_file() for p in referenced)
    assert not (kb.path / "tmp").exists() or not any((kb.path / "tmp").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["after_a_file", "after_the_rules"])
def test_kb_import_killed_midway_loses_no_rule_and_the_import_can_be_run_again(tmp_path, archive, moment):
    home = tmp_path / "home"
    local = KnowledgeBase.open(home / "knowledge")
    mine = local.add_rule("widget", "The local expert's rule survives any import.")
    local.close()
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(STALLED_IMPORT), str(home), str(archive), moment],
                             cwd=ROOT, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "stalled", child.stderr.read()[-2000:]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    store = KnowledgeBase.open(home / "knowledge")
    _assert_consistent(store)
    assert store.get_rule(mine.id) == mine
    store.import_archive(archive)
    _assert_consistent(store)
    assert len(store.rules("gadget")) == 12 and len(store.references("gadget")) == 3
    assert store.get_rule(mine.id) == mine
    store.close()
