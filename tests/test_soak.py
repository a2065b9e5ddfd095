"""A small soak in the suite: two users chat with one launched app at the same time, two turns each.

The full soak (8 users, memory sampled) is benchmarks/bench_soak.py; this runs its users and its
leakage check against an app launched in the test process.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest

from benchmarks.bench_soak import UserRun, leaks, make_pictures, run_round

pytestmark = pytest.mark.slow
USERS = ["alice", "bob"]


@contextlib.contextmanager
def served_app(root: Path, idle_s: float | None = None):
    """The app (offline backend, no sign-in) on loopback; idle_s: conversations expire after that many seconds."""
    import ui
    from assistant.config import load_settings

    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_TEMP_DIR", str(root / "gradio"))
    if idle_s is not None:
        patch.setattr(ui, "CONVERSATION_IDLE_S", idle_s)
    settings = load_settings({"home": str(root / "home"), "backend": "offline"}, env={})
    demo = ui.build_app(settings)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, url, _ = ui.launch(demo, settings, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()
        patch.undo()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[UserRun]:
    root = tmp_path_factory.mktemp("soak")
    with served_app(root) as url:
        yield run_round(url, USERS, 2, make_pictures(root / "pictures", USERS, 2))


def test_every_turn_of_every_user_is_answered_without_an_error(runs):
    assert [run.errors for run in runs] == [[], []]
    assert [[kind for kind, _ in run.latencies] for run in runs] == [["inspection", "follow-up"]] * 2


def test_each_history_holds_only_its_own_users_messages_and_files(runs):
    assert all(run.history for run in runs) and leaks(runs) == []


def test_the_leak_check_finds_a_message_of_another_user():
    mine = {"role": "user", "text": "[alice] is anything wrong?", "files": ["/tmp/x/alice-turn0.png"], "title": ""}
    theirs = {"role": "user", "text": "[bob] why?", "files": [], "title": ""}
    assert leaks([UserRun("alice", history=[mine, theirs]), UserRun("bob", history=[theirs])]) == [
        "alice sees a message it did not write: '[bob] why?'", "alice sees something of bob"]


def test_an_idle_conversation_is_dropped_with_its_files(tmp_path):
    with served_app(tmp_path, idle_s=1.0) as url:
        run_round(url, ["carol"], 1, make_pictures(tmp_path / "pictures", ["carol"], 1))
        folders = tmp_path / "gradio" / "anomaly-chat"
        assert [p for p in folders.iterdir() if any(p.iterdir())]  # the conversation's pictures are there
        deadline = time.monotonic() + 15
        while any(folders.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(folders.iterdir()) == []
