"""The launched app (sign-in on, offline backend) driven with gradio_client against hostile input.

Every hostile file of tests/helpers/hostile.py is uploaded in one conversation: each gets one line
in the chat, and a good file still gets a verdict afterwards. Upload names sent by a client cannot
place a file outside the app's temp area, a file the client never uploaded cannot be read, HTML is
shown as text, and a failing model server is one line in the chat without the configured key ever
leaving for a base URL chosen in the app.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from assistant.app.chat_view import normalise_history
from tests.helpers.app import launched_app
from tests.helpers.hostile import CANARY, CORPUS

pytestmark = pytest.mark.slow
PARTS = ["class information", "reference images", "expert evidence"]
ODD_NAMES = ["../../../outside.png", "/etc/cron.d/outside.png", "a\x00b.png", "x" * 300 + ".png",
             "gnp.\u202eexe.png", "<img src=x onerror=alert(1)>.png"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with launched_app(tmp_path_factory.mktemp("secure_app"), openai_api_key=CANARY, max_retries=1) as running:
        yield running


def _chat(client, text="", files=(), class_name="widget") -> list:
    """The chat as the app sends it back after one message."""
    from gradio_client import handle_file

    message = {"text": text, "files": [handle_file(str(f)) for f in files]}
    chat, _box = client.predict(message, class_name, PARTS, 2, api_name="/chat")
    return chat


def ask(client, text="", files=(), class_name="widget") -> list[dict]:
    return normalise_history(_chat(client, text, files, class_name))


def _shown(value) -> list[str]:
    """Every text the page shows from a chat: message texts, titles and the pictures' alt texts."""
    if isinstance(value, list):
        return [text for item in value for text in _shown(item)]
    if not isinstance(value, dict):
        return [value] if isinstance(value, str) else []
    own = [value[k] for k in ("text", "alt_text", "title") if isinstance(value.get(k), str)]
    return own + [t for k, v in value.items() if k not in ("file", "path", "url") for t in _shown(v)]


@pytest.fixture(scope="module")
def hostile_session(app):
    """One conversation: every uploadable hostile file in turn, then a good file; the last messages."""
    client = app.client()
    replies = {case.name: ask(client, "is anything wrong?", [case.write(app.root / "hostile")])[-1]["text"]
               for case in CORPUS if case.uploadable}
    return replies, ask(client, "and this one?", [app.files["bad"]])[-1]["text"]


def test_every_hostile_upload_gets_one_line_in_the_chat_that_says_why(hostile_session):
    replies, _ = hostile_session
    says = {case.name: case.says for case in CORPUS}
    wrong = {name: text for name, text in replies.items()
             if not (text.startswith("⚠️") and "\n" not in text and says[name] in text)}
    assert not wrong and len(replies) == sum(c.uploadable for c in CORPUS)


def test_a_good_file_gets_a_verdict_after_all_hostile_ones(hostile_session):
    _, last = hostile_session
    assert "ANOMALOUS" in last


def _upload(app, client, name: str) -> httpx.Response:
    return httpx.post(app.url + "gradio_api/upload", cookies=client.cookies,
                      files={"files": (name, app.files["bad"].read_bytes(), "image/png")})


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.mark.parametrize("name", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_an_upload_name_cannot_place_the_file_outside_the_temp_area(app, name):
    client = app.client()
    outside = _tree(app.root) - _tree(app.root / "gradio")
    reply = _upload(app, client, name)
    stored = Path(reply.json()[0])
    assert stored.resolve().is_relative_to((app.root / "gradio").resolve()) and stored.is_file()
    assert _tree(app.root) - _tree(app.root / "gradio") == outside


@pytest.mark.parametrize("name", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_an_odd_upload_name_is_shown_clean_and_the_file_is_inspected(app, name):
    client = app.client()
    stored = _upload(app, client, name).json()[0]
    chat = _chat(client, "is anything wrong?", [stored])
    assert "ANOMALOUS" in normalise_history(chat)[-1]["text"]
    assert not [text for text in _shown(chat) if "\u202e" in text or "\x00" in text or len(text) > 5000]


def test_a_file_the_client_never_uploaded_cannot_be_read(app):
    client = app.client()
    secret = app.root / "home" / "not-uploaded.csv"
    secret.write_text("secret_column\n11\n22\n33\n")
    message = {"text": "read this", "files": [{"path": str(secret), "meta": {"_type": "gradio.FileData"}}]}
    posted = httpx.post(app.url + "gradio_api/call/chat", cookies=client.cookies,
                        json={"data": [message, "widget", PARTS, 2, None]})
    stream = httpx.get(app.url + f"gradio_api/call/chat/{posted.json()['event_id']}", cookies=client.cookies,
                       timeout=60).text
    assert "event: error" in stream and "secret_column" not in stream


def test_html_in_a_message_comes_back_as_text(app):
    history = ask(app.client(), '<img src=x onerror="alert(1)"> is anything wrong?', [app.files["bad"]])
    mine = next(m for m in history if m["role"] == "user")["text"]
    assert mine.startswith("&lt;img src=x") and "<img" not in json.dumps(history)


def test_a_failing_model_server_is_one_line_and_the_key_stays_home(app):
    expert = app.client()
    for _ in range(2):  # the first try and its one retry
        app.model_server.enqueue_error(500, {"error": {"message": "the model crashed"}})
    switched = expert.predict("openai", "fake-model", app.model_server.url + "/v1", api_name="/use_backend")
    failed = ask(expert, "is anything wrong?", [app.files["bad"]])[-1]["text"]
    recovered = ask(expert, "and now?", [app.files["bad"]])[-1]["text"]
    assert switched.startswith("Using backend **openai**")
    assert failed.startswith("⚠️ the model backend failed") and "\n" not in failed and "NORMAL" in recovered
    assert app.model_server.requests and not any(r.credential_is("authorization", CANARY)
                                                 for r in app.model_server.requests)
