"""The real session and agent loop against local servers speaking the OpenAI and Gemini protocols."""

from __future__ import annotations

import base64
import json

import pytest

from assistant.cli import main
from assistant.session import Session
from tests.fixtures_models import FAKE_OPENAI_KEY, gemini_settings_for, openai_settings_for
from tests.helpers.defects import add_defect, jitter, textured_part

BAD_VERDICT = {"reasoning": "A dark spot on the upper left.", "anomalous": True, "confidence": 0.9,
               "defect_type": "spot", "location": {"box": [0.1, 0.1, 0.3, 0.3], "where": "upper left"},
               "rules_used": []}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("model-files")
    base = textured_part(seed=5)
    paths = {"ref": root / "ref.png", "bad": root / "bad.png", "good": root / "good.png"}
    jitter(base, seed=1).save(paths["ref"])
    jitter(base, seed=2).save(paths["good"])
    add_defect(jitter(base, seed=3), "spot", seed=4, scale=1.5)[0].save(paths["bad"])
    return paths


@pytest.fixture(scope="module")
def kb(tmp_path_factory, files):
    from knowledge.store import KnowledgeBase

    store = KnowledgeBase.open(tmp_path_factory.mktemp("kb"))
    store.add_reference("widget", files["ref"], author="t")
    store.add_rule("widget", "the texture is even, without spots", author="t")
    return store


def _user_text(request) -> str:
    messages = request.body["messages"]
    texts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [p.get("text", "") for p in content if p.get("type") == "text"]
    return "\n".join(texts)


def _image_labels(request) -> list[str]:
    labels = []
    for message in request.body["messages"]:
        parts = message.get("content") if isinstance(message.get("content"), list) else []
        for i, part in enumerate(parts):
            if part.get("type") == "image_url":
                assert part["image_url"]["url"].startswith("data:image/png;base64,")
                base64.b64decode(part["image_url"]["url"].split(",", 1)[1], validate=True)
                labels.append(parts[i - 1]["text"])
    return labels


def _analyse(session, path, **kwargs):
    events = list(session.send("is anything wrong?", [path], class_name="widget", **kwargs))
    return next(e.verdict for e in events if e.kind == "verdict"), events


def test_analysis_request_carries_paper_prompt_parts_in_order(openai_server, kb, files, tmp_path):
    openai_server.enqueue_text_reply(json.dumps(BAD_VERDICT))
    session = Session(openai_settings_for(openai_server, tmp_path), kb)
    verdict, _ = _analyse(session, files["bad"])
    request = openai_server.requests[0]
    text = _user_text(request)
    assert _image_labels(request) == ["[image: reference 1]", "[image: query]", "[image: expert]"]
    assert "widget" in text and "the texture is even, without spots" in text
    assert '"anomalous" (true or false)' in text  # the format prompt
    assert request.body["response_format"]["type"] == "json_schema"
    assert verdict.anomalous is True and verdict.backend == "openai"
    assert verdict.score == pytest.approx(0.9) and verdict.score_source == "confidence"


def test_naive_strategy_sends_only_the_query_image(openai_server, kb, files, tmp_path):
    session = Session(openai_settings_for(openai_server, tmp_path), kb)
    _analyse(session, files["good"], strategy="naive")
    request = openai_server.requests[0]
    assert _image_labels(request) == ["[image: query]"]
    assert "widget" not in _user_text(request)


def test_unreadable_verdict_is_repaired_once_then_reported_unparsed(openai_server, kb, files, tmp_path):
    openai_server.enqueue_text_reply("I think it is fine.")
    openai_server.enqueue_text_reply("Still no JSON, sorry.")
    session = Session(openai_settings_for(openai_server, tmp_path), kb)
    verdict, _ = _analyse(session, files["good"])
    assert len(openai_server.requests) == 2
    assert "could not be read as the required JSON" in _user_text(openai_server.requests[1])
    assert verdict.parsed is False and verdict.anomalous is None and "no JSON" in verdict.parse_error


def test_repair_retry_recovers_a_verdict(openai_server, kb, files, tmp_path):
    openai_server.enqueue_text_reply('{"reasoning": "cut')
    openai_server.enqueue_text_reply(json.dumps(BAD_VERDICT))
    session = Session(openai_settings_for(openai_server, tmp_path), kb)
    verdict, _ = _analyse(session, files["bad"])
    assert verdict.parsed is True and verdict.anomalous is True
    assert verdict.usage == {"input_tokens": 22, "output_tokens": 14}  # both calls counted


def test_tool_round_trip_sends_result_text_then_its_picture(openai_server, kb, files, tmp_path):
    session = Session(openai_settings_for(openai_server, tmp_path), kb)
    list(session.send("", [files["bad"]], class_name="widget"))
    artifact_id = next(iter(session.artifacts))
    openai_server.enqueue_tool_call("zoom_region", {"artifact_id": artifact_id, "x0": 0.0, "y0": 0.0, "x1": 0.5, "y1": 0.5})
    openai_server.enqueue_text_reply("The zoomed corner shows a dark spot.")
    events = list(session.send("zoom into the upper left corner"))
    follow_up = openai_server.requests[-1].body["messages"]
    tool_message = next(m for m in follow_up if m["role"] == "tool")
    assert tool_message["tool_call_id"] == "call_1" and isinstance(tool_message["content"], str)
    after_tool = follow_up[follow_up.index(tool_message) + 1]
    assert after_tool["role"] == "user" and any(p.get("type") == "image_url" for p in after_tool["content"])
    assert any(e.kind == "step" and "zoom_region" in e.title and e.status == "done" for e in events)
    assert [e.text for e in events if e.kind == "answer"] == ["The zoomed corner shows a dark spot."]


def test_rule_taught_in_turn_two_is_in_the_request_of_turn_three(openai_server, kb, files, tmp_path):
    session = Session(openai_settings_for(openai_server, tmp_path), kb, author="expert-bo")
    _analyse(session, files["good"])
    lesson = "rule for widget: the serial sticker must be on the right edge"
    openai_server.enqueue_tool_call("add_rule", {"class_name": "widget", "text": "the serial sticker must be on the right edge"})
    openai_server.enqueue_text_reply("Stored.")
    list(session.send(lesson))
    stored = [r for r in kb.rules("widget") if "serial sticker" in r.text]
    assert len(stored) == 1 and stored[0].author == "expert-bo"
    _analyse(session, files["bad"])
    assert "the serial sticker must be on the right edge" in _user_text(openai_server.requests[-1])


def test_model_cannot_store_a_rule_the_person_did_not_state(openai_server, kb, files, tmp_path):
    session = Session(openai_settings_for(openai_server, tmp_path), kb)
    before = len(kb.rules("widget"))
    openai_server.enqueue_tool_call("add_rule", {"class_name": "widget", "text": "all widgets are always normal"})
    openai_server.enqueue_text_reply("ok")
    list(session.send("what do you know about widgets?"))
    assert len(kb.rules("widget")) == before
    tool_message = next(m for m in openai_server.requests[-1].body["messages"] if m["role"] == "tool")
    assert tool_message["content"].startswith("Error: only rules that the person states")


def test_follow_up_streams_text_deltas(openai_server, kb, files, tmp_path):
    session = Session(openai_settings_for(openai_server, tmp_path), kb)
    _analyse(session, files["bad"])
    openai_server.enqueue_stream(["The spot ", "is darker ", "than the texture."])
    events = list(session.send("why?"))
    assert [e.text for e in events if e.kind == "text"] == ["The spot ", "is darker ", "than the texture."]
    assert openai_server.requests[-1].body.get("stream") is True


def test_gemini_analysis_and_teaching_through_the_same_loop(gemini_server, kb, files, tmp_path):
    gemini_server.enqueue_text_reply(json.dumps(BAD_VERDICT))
    session = Session(gemini_settings_for(gemini_server, tmp_path), kb, author="expert-cy")
    verdict, _ = _analyse(session, files["bad"])
    assert verdict.anomalous is True and verdict.backend == "gemini"
    body = gemini_server.requests[0].body
    inline = [p for c in body["contents"] for p in c["parts"] if "inline_data" in p or "inlineData" in p]
    assert len(inline) == 3  # reference, query, expert composite
    gemini_server.enqueue_tool_call("add_rule", {"class_name": "widget", "text": "the corner radius is always 5 mm"})
    gemini_server.enqueue_text_reply("Stored.")
    list(session.send("remember that the corner radius is always 5 mm"))
    assert any("corner radius" in r.text and r.author == "expert-cy" for r in kb.rules("widget"))


def test_gemini_verdict_after_a_tool_call_comes_from_the_structured_verdict_not_prose(gemini_server, kb, files,
                                                                                      tmp_path):
    from assistant.backends.gemini_mapping import VERDICT_FUNCTION

    gemini_server.enqueue_tool_call("list_classes", {})
    gemini_server.enqueue_tool_call(VERDICT_FUNCTION, BAD_VERDICT)
    session = Session(gemini_settings_for(gemini_server, tmp_path), kb)
    verdict, events = _analyse(session, files["bad"])
    assert verdict.parsed and verdict.anomalous is True and verdict.reasoning == BAD_VERDICT["reasoning"]
    assert any(e.kind == "step" and "list_classes" in e.title for e in events)
    for request in gemini_server.requests:  # the structured verdict is asked for on every turn that may give it
        names = [d["name"] for d in request.body["tools"][0]["functionDeclarations"]]
        assert VERDICT_FUNCTION in names and request.body["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"


def test_cli_ask_exits_1_when_the_server_keeps_failing(openai_server, kb, files, tmp_path, fast_backoff, capsys):
    for _ in range(10):
        openai_server.enqueue_error(500, {"error": {"message": "boom"}})
    code = main(["--home", str(tmp_path), "ask", str(files["good"]), "--class", "widget", "--backend", "openai",
                 "--base-url", openai_server.url + "/v1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "500" in err and FAKE_OPENAI_KEY not in err and len(err.strip().splitlines()) == 1


def test_logprobs_of_the_verdict_token_give_the_score(openai_server, kb, files, tmp_path):
    import math

    text = json.dumps(BAD_VERDICT)
    head, tail = text.split('"anomalous": ')
    tokens = [(head + '"anomalous": ', 0.0, {}), ("true", math.log(0.7), {"true": math.log(0.7), "false": math.log(0.3)}),
              (tail[len("true"):], 0.0, {})]
    openai_server.enqueue_text_reply(text, logprobs=tokens)
    session = Session(openai_settings_for(openai_server, tmp_path), kb)
    verdict, _ = _analyse(session, files["bad"])
    assert openai_server.requests[0].body.get("logprobs") is True
    assert verdict.score_source == "logprobs" and verdict.score == pytest.approx(0.7)
