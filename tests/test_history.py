"""Conversations kept per person under the app's home: a reload or a later visit finds them, bounded and safe;
the app's Conversation keeps itself, continues its Session on a reloaded page, and logs its verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from assistant.app import history as history_module
from assistant.app import inspection_log
from assistant.app import references as refs
from assistant.app.access import SINGLE_USER, User
from assistant.app.conversation import REOPENED, Conversation
from assistant.app.history import ConversationStore, LiveSessions, user_key
from assistant.config import load_settings
from tests.helpers.defects import add_defect, jitter, textured_part


def _picture(path: Path, size=(1600, 1200)) -> Path:
    Image.new("RGB", size, (90, 120, 150)).save(path)
    return path


def _messages(tmp_path) -> list[dict]:
    series = tmp_path / "line.csv"
    series.write_text("t,v\n1,2\n", encoding="utf-8")
    return [{"role": "user", "content": [{"path": str(_picture(tmp_path / "part.png")), "alt_text": "part.png"},
                                         {"path": str(series), "alt_text": "line.csv"}, "is it ok?"]},
            {"role": "assistant", "content": "done", "metadata": {"title": "🔬 Vision expert", "status": "done"}},
            {"role": "assistant", "content": ['<span class="verdict-badge">NORMAL</span>',
                                              {"path": str(_picture(tmp_path / "evidence.png", (900, 300)))}, "why"]}]


def test_a_conversation_comes_back_with_its_pictures_and_the_names_of_other_files(tmp_path):
    store = ConversationStore(tmp_path / "home", "anna")
    store.save("0123456789ab", _messages(tmp_path))
    loaded = store.load("0123456789ab")
    picture = loaded[0]["content"][0]
    assert Path(picture["path"]).is_file() and max(Image.open(picture["path"]).size) == history_module.PICTURE_SIDE
    assert loaded[0]["content"][1] == "📎 line.csv (not kept in the history)" and loaded[0]["content"][2] == "is it ok?"
    assert loaded[1]["metadata"]["title"] == "🔬 Vision expert"
    [summary] = store.summaries()
    assert (summary.id, summary.title, summary.inspections) == ("0123456789ab", "part.png · is it ok?", 1)


def test_no_name_a_person_types_becomes_a_path(tmp_path):
    home = tmp_path / "home"
    store = ConversationStore(home, "../../etc/evil name")
    store.save("0123456789ab", _messages(tmp_path))
    assert store.root == home / "history" / user_key("../../etc/evil name") and store.root.is_dir()
    assert all(part not in str(p.relative_to(home)) for p in home.rglob("*") for part in ("evil", "..", "part.png"))
    assert store.load("../0123456789ab") is None and store.load("0123456789ab/..") is None
    with pytest.raises(ValueError):
        store.save("../escape", [])


def test_the_page_opens_the_current_conversation_and_a_new_one_after_new_conversation(tmp_path):
    store = ConversationStore(tmp_path, "anna")
    assert store.current() is None
    store.set_current("0123456789ab")
    assert store.current() == "0123456789ab"
    store.set_current(None)
    assert store.current() is None
    (store.root / "current").write_text("../../x", encoding="utf-8")
    assert store.current() is None


def test_a_persons_history_is_bounded_oldest_first(tmp_path, monkeypatch):
    monkeypatch.setattr(history_module, "MAX_CONVERSATIONS", 3)
    store = ConversationStore(tmp_path, "anna")
    messages = _messages(tmp_path)
    ids = [f"{i:012x}" for i in range(5)]
    for conversation_id in ids:
        store.save(conversation_id, messages)
    assert sorted(s.id for s in store.summaries()) == ids[2:]
    monkeypatch.setattr(history_module, "MAX_BYTES", 1)  # only the one being saved survives
    store.save(ids[0], messages)
    assert [s.id for s in store.summaries()] == [ids[0]]


def test_pictures_and_messages_per_conversation_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(history_module, "MAX_PICTURES", 2)
    monkeypatch.setattr(history_module, "MAX_MESSAGES", 3)
    store = ConversationStore(tmp_path / "home", "anna")
    many = [{"role": "assistant", "content": [{"path": str(_picture(tmp_path / f"p{i}.png", (10 + i, 10)))}]}
            for i in range(5)]
    store.save("0123456789ab", many)
    loaded = store.load("0123456789ab")
    assert len(loaded) == 3 and sum(isinstance(m["content"][0], dict) for m in loaded) == 2


def test_a_page_that_reopens_a_conversation_takes_it_over():
    live, first, second = LiveSessions(), type("Page", (), {})(), type("Page", (), {})()
    assert live.claim("0123456789ab", first) is None
    assert live.claim("0123456789ab", second) is first and first.taken_over is True
    live.release("0123456789ab", first)  # the old page's state expires: the new page keeps the conversation
    assert live.claim("0123456789ab", second) is None


# -- the app's Conversation --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app_parts(tmp_path_factory):
    from knowledge.store import KnowledgeBase

    root = tmp_path_factory.mktemp("history_app")
    settings = load_settings({"home": str(root / "home"), "backend": "offline"}, env={})
    kb = KnowledgeBase.open(settings.kb_dir)
    base = textured_part(seed=8)
    files = {f"ref{i}": root / f"ref{i}.png" for i in range(3)}
    for i in range(3):
        jitter(base, seed=30 + i).save(files[f"ref{i}"])
    files["bad"] = root / "bad.png"
    add_defect(jitter(base, seed=77), "spot", seed=3, scale=1.5)[0].save(files["bad"])
    return settings, kb, files, root


def _conversation(app_parts, live, user=SINGLE_USER):
    settings, kb, _, root = app_parts
    return Conversation(settings, user, lambda: kb, root / "gradio", live)


def _run(conversation, text, files=(), **options):
    return list(conversation.turn(text, [str(f) for f in files], **options))[-1]


def test_files_said_to_be_normal_are_offered_and_stored_only_on_the_button(app_parts):
    settings, kb, files, _ = app_parts
    conversation = _conversation(app_parts, LiveSessions())
    messages = _run(conversation, "these three are all good", [files["ref0"], files["ref1"], files["ref2"]],
                    class_name="plate")
    assert "Store 3 file(s) as reference normals of **plate**?" in messages[-1]["content"]
    assert [o["value"] for o in messages[-1]["options"]] == [refs.STORE, refs.CANCEL] and kb.references("plate") == []
    messages = conversation.answer_offer(refs.STORE)
    assert "3 stored in all" in messages[-1]["content"] and len(kb.references("plate")) == 3
    assert not any("options" in m for m in messages)  # answered: the buttons are gone
    assert "nothing to store" in conversation.answer_offer(refs.STORE)[-1]["content"]  # a second press stores nothing


def test_an_operator_is_told_to_ask_an_expert(app_parts):
    _, kb, files, _ = app_parts
    conversation = _conversation(app_parts, LiveSessions(), User("olga", "operator"))
    messages = _run(conversation, "add these as references", [files["ref0"]], class_name="plate-op")
    assert "Only experts may store reference normals" in messages[-1]["content"] and conversation.offer is None
    assert kb.references("plate-op") == []


def test_a_reloaded_page_finds_the_conversation_and_continues_it(app_parts):
    settings, kb, files, _ = app_parts
    for i in range(3):
        kb.add_reference("disc", files[f"ref{i}"], author="t")
    live = LiveSessions()
    first = _conversation(app_parts, live)
    _run(first, "is anything wrong?", [files["bad"]], class_name="disc")
    second = _conversation(app_parts, live)  # the same person's new page
    assert second.reopen() is True and second.id == first.id and second.session is first.session
    shown = json.dumps(second.view.messages)
    assert "verdict-badge" in shown and str(second.files_dir) in shown and str(first.files_dir) not in shown
    answer = _run(second, "how sure are you?")[-1]["content"]
    assert answer.startswith("Score 0.")
    _run(first, "and where?")  # the old page goes on as a conversation of its own
    assert first.id != second.id and {first.id, second.id} <= {s.id for s in first.history.summaries()}
    lines = inspection_log.entries(settings.home, user="user")
    assert [(x["file_name"], x["verdict"], x["class_name"]) for x in lines][-1] == ("bad.png", "anomalous", "disc")


def test_a_conversation_reopened_after_a_restart_says_its_files_are_gone(app_parts):
    _, kb, files, _ = app_parts
    first = _conversation(app_parts, LiveSessions())
    _run(first, "is anything wrong?", [files["bad"]], class_name="disc")
    later = _conversation(app_parts, LiveSessions())  # a new process: nothing live
    assert later.reopen(first.id) and later.reopened
    assert REOPENED in _run(later, "why?")[-1]["content"]


def test_new_conversation_makes_the_next_page_start_empty(app_parts):
    live = LiveSessions()
    conversation = _conversation(app_parts, live)
    _run(conversation, "hello")
    conversation.clear()
    fresh = _conversation(app_parts, live)
    assert fresh.reopen() is False and fresh.view.messages == []


def test_each_person_sees_only_their_own_conversations(app_parts):
    settings, _, _, _ = app_parts
    mine = ConversationStore(settings.home, "user").summaries()
    theirs = ConversationStore(settings.home, "olga").summaries()
    assert mine and theirs and not {s.id for s in mine} & {s.id for s in theirs}


def test_two_pages_of_one_conversation_take_turns(app_parts):
    live = LiveSessions()
    first = _conversation(app_parts, live)
    _run(first, "hello")
    second = _conversation(app_parts, live)
    second.reopen()
    assert second.session is first.session
    with first.session.turn_lock:  # the first page is mid-turn
        messages = _run(second, "and now?")
    assert "answering in another tab" in messages[-1]["content"]
    assert "I have not inspected anything" in _run(second, "and now?")[-1]["content"]  # afterwards it is answered
