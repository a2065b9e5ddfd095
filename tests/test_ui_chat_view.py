"""How events become chat messages, without a browser or a server."""

from __future__ import annotations

import gradio as gr
import pytest
from PIL import Image

from assistant.app.chat_view import ChatView, badge_html, normalise_history, one_line, verdict_markdown
from assistant.app.conversation import strategy_from_switches, switches_for
from assistant.events import Event
from assistant.prompts import DEFAULT_STRATEGY
from assistant.verdict import Verdict


def _verdict(anomalous, score=0.8, **kw):
    return Verdict(anomalous=anomalous, score=score, score_source="confidence", reasoning="A dark spot <b>left</b>.",
                   location={"box": [0.1, 0.2, 0.3, 0.4], "where": "upper left"}, class_name="bottle",
                   strategy="rules+reference", backend="offline", model="experts", **kw)


@pytest.mark.parametrize("anomalous, word, css", [(True, "ANOMALOUS", "anomalous"), (False, "NORMAL", "normal"),
                                                  (None, "UNDECIDED", "undecided")])
def test_the_badge_names_the_verdict_and_its_score(anomalous, word, css):
    html = badge_html(_verdict(anomalous, score=None if anomalous is None else 0.83))
    assert word in html and f"verdict-{css}" in html
    assert ("score 0.83" in html) == (anomalous is not None)


def test_an_unreadable_reply_is_shown_as_undecided_with_the_reason():
    text = verdict_markdown(_verdict(None, score=None, parsed=False, parse_error="no JSON object found"))
    assert "UNDECIDED" in text and "no JSON object found" in text


def test_the_verdict_message_has_location_reasoning_and_escaped_model_text():
    text = verdict_markdown(_verdict(True))
    assert "upper left (x 0.10–0.30, y 0.20–0.40 of the image)" in text
    assert "&lt;b&gt;left&lt;/b&gt;" in text and "<b>left</b>" not in text
    assert "offline/experts" in text


def test_a_step_is_pending_then_done_with_its_duration(tmp_path):
    view = ChatView(tmp_path)
    view.apply(Event("step", title="🔬 Vision expert", status="pending", step_id="s1"))
    assert view.messages[-1]["metadata"] == {"title": "🔬 Vision expert", "id": "s1", "status": "pending"}
    view.apply(Event("step", title="🔬 Vision expert", status="done", step_id="s1", duration_s=1.234, text="1 item(s)"))
    assert len(view.messages) == 1
    assert view.messages[0]["metadata"]["status"] == "done" and view.messages[0]["metadata"]["duration"] == 1.23
    assert view.messages[0]["content"] == "1 item(s)"


def test_a_failed_step_says_so_in_its_title(tmp_path):
    view = ChatView(tmp_path)
    view.apply(Event("step", title="📥 Load files", status="pending", step_id="s2"))
    view.apply(Event("step", title="📥 Load files", status="error", step_id="s2", text="not an image"))
    assert view.messages[0]["metadata"]["title"] == "📥 Load files — failed"


def test_streamed_text_grows_one_message_and_the_answer_replaces_it(tmp_path):
    view = ChatView(tmp_path)
    for piece in ("The spot ", "is left."):
        view.apply(Event("text", text=piece))
    assert [m["content"] for m in view.messages] == ["The spot is left."]
    view.apply(Event("answer", text="The spot is on the left."))
    assert [m["content"] for m in view.messages] == ["The spot is on the left."]


def test_pictures_are_written_into_the_conversation_folder(tmp_path):
    view = ChatView(tmp_path / "conv")
    view.apply(Event("notice", title="evidence", images=[Image.new("RGB", (8, 4))]))
    caption, picture = view.messages[-1]["content"]
    assert "heatmap" in caption
    assert picture["path"].startswith(str(tmp_path / "conv")) and Image.open(picture["path"]).size == (8, 4)


def test_an_error_is_one_line_and_stops_running_steps(tmp_path):
    view = ChatView(tmp_path)
    view.apply(Event("step", title="🔬 Vision expert", status="pending", step_id="s3"))
    view.add_error("cannot read file.png: not an image\nTraceback (most recent call last): ...")
    assert view.messages[-1]["content"] == "⚠️ cannot read file.png: not an image"
    assert view.messages[0]["metadata"]["status"] == "done" and "stopped" in view.messages[0]["metadata"]["title"]


def test_one_line_shortens_long_messages():
    assert len(one_line("x" * 1000)) == 300


def test_history_from_the_browser_and_from_handlers_reads_the_same(tmp_path):
    picture = tmp_path / "p.png"
    Image.new("RGB", (4, 4)).save(picture)
    handler_messages = [{"role": "user", "content": [{"path": str(picture)}, "is it ok?"]},
                        gr.ChatMessage(content="checking", metadata={"title": "🔬 Vision expert"}),
                        {"role": "assistant", "content": "NORMAL"}]
    chatbot = gr.Chatbot()
    browser_messages = chatbot.preprocess(chatbot.postprocess(handler_messages))  # the browser's shape
    assert browser_messages[0]["content"][0]["type"] == "file"  # really the other format
    expected = [("user", "is it ok?", 1, ""), ("assistant", "checking", 0, "🔬 Vision expert"),
                ("assistant", "NORMAL", 0, "")]
    for history in (handler_messages, browser_messages):
        got = [(m["role"], m["text"], len(m["files"]), m["title"]) for m in normalise_history(history)]
        assert got == expected


@pytest.mark.parametrize("switches, strategy", [
    ([], "naive"), (["class information"], "class"), (["normality rules", "reference images"], "rules+reference"),
    (["expert evidence", "class information", "reference images"], "class+reference+expert"),
])
def test_the_prompt_switches_make_the_papers_strategies(switches, strategy):
    assert strategy_from_switches(switches) == strategy


def test_the_default_strategy_switches_its_parts_on():
    assert switches_for(DEFAULT_STRATEGY) == ["class information", "normality rules", "reference images",
                                                       "expert evidence"]


def test_history_as_gradio_client_returns_it_reads_the_same():
    from_client = [{"role": "assistant", "metadata": None, "options": None,
                    "content": [{"text": "*heatmap*", "type": "text"},
                                {"file": "/downloads/abc/composite.png", "alt_text": "heatmap", "type": "file"}]}]
    assert normalise_history(from_client) == [{"role": "assistant", "text": "*heatmap*",
                                               "files": ["/downloads/abc/composite.png"], "title": ""}]


def test_a_location_box_is_shown_in_fractions_unless_it_is_a_sliver():
    from assistant.app.chat_view import location_text

    assert location_text({"where": "upper left", "box": [0.1, 0.2, 0.3, 0.4]}) == (
        "upper left (x 0.10–0.30, y 0.20–0.40 of the image)")
    sliver = {"where": "lower right, on the far side in this view", "box": [0.9985, 0.65, 1.0, 0.74]}
    assert location_text(sliver) == "lower right, on the far side in this view"
    assert location_text({"box": [0.1, 0.2, 0.3, 0.4]}) == "x 0.10–0.30, y 0.20–0.40 of the image"
