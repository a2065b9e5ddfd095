"""A Chroma server that goes away (SIGKILL) in the middle of a session and comes back on the same path and port.

While it is away every operation fails with one ConfigError line that names the server, and the
chat says so in one line; once it is back the same open knowledge base and the same chat work
again (no reopening, no restart of the app), and nothing stored before the outage is lost.
The scenario runs once per module; each test checks one part of it.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from assistant.app.access import SINGLE_USER
from assistant.app.conversation import Conversation
from assistant.config import load_settings
from knowledge.store import KnowledgeBase
from tests.helpers.chroma_server import free_port as _free_port
from tests.helpers.chroma_server import start_chroma
from tests.helpers.defects import jitter, textured_part
from tools.errors import ConfigError

pytestmark = [pytest.mark.slow, pytest.mark.chroma_server]


class ChromaServer:
    """One `chroma run` process on a fixed path and port, which a test can kill and start again."""

    def __init__(self, folder: Path):
        self.folder, self.port, self.process = folder, _free_port(), None
        self.url = f"http://127.0.0.1:{self.port}/?database=outage"

    def start(self) -> None:
        self.process = start_chroma(self.folder, self.port)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@dataclass
class Outage:
    """What happened before, during and after the outage."""

    kb: KnowledgeBase
    before: dict
    failures: dict = field(default_factory=dict)  # operation -> the exception it raised (None: it did not fail)
    chat_during: str = ""
    chat_after: str = ""
    export: Path | None = None


def _failure(operation):
    try:
        operation()
    except Exception as exc:  # noqa: BLE001 - the test looks at what was raised
        return exc
    return None


def _chat(conversation: Conversation, picture: Path) -> str:
    *_, messages = conversation.turn("is anything wrong?", [str(picture)], class_name="widget")
    return messages[-1]["content"] if isinstance(messages[-1]["content"], str) else str(messages[-1]["content"])


@pytest.fixture(scope="module")
def outage(tmp_path_factory):
    root = tmp_path_factory.mktemp("outage")
    base = textured_part(size=160, seed=11)
    pictures = [root / f"part{i}.png" for i in range(3)]
    for i, path in enumerate(pictures):
        jitter(base, seed=40 + i).save(path)
    server = ChromaServer(root)
    server.start()
    try:
        yield _run_outage(server, root, pictures)
    finally:
        server.kill()


def _run_outage(server: ChromaServer, root: Path, pictures: list[Path]) -> Outage:
    settings = load_settings({"home": str(root / "home"), "backend": "offline", "chroma_url": server.url}, env={})
    kb = KnowledgeBase.open(settings.kb_dir, chroma_url=server.url)
    rule, reference = kb.add_rule("widget", "The widget is blue all over."), kb.add_reference("widget", pictures[0])
    conversation = Conversation(settings, SINGLE_USER, lambda: kb, root / "chat-files")
    record = Outage(kb, {"rule": rule, "reference": reference})
    server.kill()
    record.export = root / "during.zip"
    operations = {"classes": kb.classes, "rules": lambda: kb.rules("widget"),
                  "search": lambda: kb.search_rules("blue", k=1),
                  "add rule": lambda: kb.add_rule("widget", "Written while the server was away."),
                  "add reference": lambda: kb.add_reference("widget", pictures[1]),
                  "export": lambda: kb.export(record.export)}
    record.failures = {name: _failure(operation) for name, operation in operations.items()}
    record.chat_during = _chat(conversation, pictures[2])
    server.start()
    record.chat_after = _chat(conversation, pictures[2])
    return record


def test_every_operation_during_the_outage_fails_with_one_line_naming_the_server(outage):
    assert all(isinstance(exc, ConfigError) for exc in outage.failures.values()), outage.failures
    for exc in outage.failures.values():
        assert str(exc).startswith("the Chroma server at http://127.0.0.1:") and "\n" not in str(exc)


def test_the_chat_during_the_outage_shows_one_line(outage):
    assert outage.chat_during.startswith("⚠️ the Chroma server at") and "\n" not in outage.chat_during


def test_the_same_chat_answers_once_the_server_is_back(outage):
    assert "NORMAL" in outage.chat_after or "ANOMALOUS" in outage.chat_after


def test_the_open_knowledge_base_reads_and_writes_again_without_reopening(outage):
    added = outage.kb.add_rule("widget", "Written after the server came back.")
    assert [r.id for r in outage.kb.rules("widget")] == [outage.before["rule"].id, added.id]


def test_nothing_stored_before_the_outage_is_lost_and_nothing_half_written_stays(outage):
    assert outage.kb.get_rule(outage.before["rule"].id) == outage.before["rule"]
    assert [s.id for s in outage.kb.references("widget")] == [outage.before["reference"].id]
    assert outage.kb.repair() == {"records_removed": 0, "files_removed": 0, "temp_files_removed": 0}
    assert not outage.export.exists() and not outage.export.with_name("during.zip.part").exists()
