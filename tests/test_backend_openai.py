"""The OpenAI backend against a real local Chat Completions server (tests/helpers/fake_openai.py)."""

from __future__ import annotations

import base64
import logging
import threading
import time

import pytest

from assistant.backends import retry
from assistant.backends.base import Message, ToolCall
from assistant.backends.openai_backend import OpenAIBackend
from assistant.prompts import VERDICT_SCHEMA
from tests.fixtures_models import (
    FAKE_OPENAI_KEY,
    ZOOM_TOOL,
    ask,
    model_settings,
    openai_settings_for,
    png_image,
)
from tests.helpers.fake_openai import VALID_VERDICT_TEXT, error_body
from tools.errors import BackendError, ConfigError

pytestmark = pytest.mark.usefixtures("fast_backoff")


@pytest.fixture
def backend(openai_server, tmp_path) -> OpenAIBackend:
    return OpenAIBackend(openai_settings_for(openai_server, tmp_path))


def make_backend(server, tmp_path, **overrides) -> OpenAIBackend:
    return OpenAIBackend(openai_settings_for(server, tmp_path, **overrides))


# ---- what is sent -----------------------------------------------------------------------------


def test_images_are_sent_in_order_each_after_its_caption(backend, openai_server):
    backend.complete(ask("Compare:", png_image("reference"), png_image("query"), "Answer in JSON."))
    content = openai_server.last_request.body["messages"][1]["content"]
    summary = [p["text"] if p["type"] == "text" else "IMAGE" for p in content]
    assert summary == [
        "Compare:",
        "[image: reference]",
        "IMAGE",
        "[image: query]",
        "IMAGE",
        "Answer in JSON.",
    ]


def test_image_data_url_decodes_to_the_png_that_was_given(backend, openai_server):
    image = png_image("query", color=(1, 2, 3))
    backend.complete(ask(image))
    url = openai_server.last_request.body["messages"][1]["content"][1]["image_url"]["url"]
    header, data = url.split(",", 1)
    assert header == "data:image/png;base64"
    assert base64.b64decode(data) == image.data


def test_system_text_is_the_first_message(backend, openai_server):
    backend.complete(ask(system="You are a strict inspector."))
    assert openai_server.last_request.body["messages"][0] == {
        "role": "system",
        "content": "You are a strict inspector.",
    }


def test_text_only_user_message_is_sent_as_a_plain_string(backend, openai_server):
    backend.complete(ask("Is the screw bag complete?"))
    assert openai_server.last_request.body["messages"][1]["content"] == "Is the screw bag complete?"


def test_json_schema_is_sent_as_strict_response_format(backend, openai_server):
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    assert openai_server.last_request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA, "strict": True},
    }


def test_no_response_format_is_sent_without_a_schema(backend, openai_server):
    backend.complete(ask())
    assert "response_format" not in openai_server.last_request.body


def test_api_key_is_sent_as_bearer_token_and_redacted_in_the_record(backend, openai_server):
    backend.complete(ask())
    request = openai_server.last_request
    assert request.credential_is("authorization", FAKE_OPENAI_KEY)
    assert FAKE_OPENAI_KEY not in str(request.headers)


def test_model_and_sdk_retries_off_are_sent(backend, openai_server):
    backend.complete(ask())
    request = openai_server.last_request
    assert (request.body["model"], request.header("x-stainless-retry-count")) == ("gpt-4o", "0")


def test_base_url_given_to_the_backend_wins_over_settings(openai_server, tmp_path):
    settings = model_settings(
        tmp_path, openai_base_url="http://127.0.0.1:9/v1", openai_api_key=FAKE_OPENAI_KEY
    )
    OpenAIBackend(settings, base_url=openai_server.url + "/v1").complete(ask())
    assert len(openai_server.requests) == 1


# ---- what comes back --------------------------------------------------------------------------


def test_reply_text_model_and_usage_are_returned(backend, openai_server):
    openai_server.enqueue_text_reply(VALID_VERDICT_TEXT, usage=(120, 42))
    reply = backend.complete(ask())
    assert (reply.text, reply.model, reply.usage, reply.finish_reason) == (
        VALID_VERDICT_TEXT,
        "gpt-4o",
        {"input_tokens": 120, "output_tokens": 42},
        "stop",
    )


def test_tool_call_is_returned_as_a_tool_call(backend, openai_server):
    openai_server.enqueue_tool_call("zoom", {"box": [0.1, 0.2, 0.5, 0.6]}, call_id="call_zoom_1")
    reply = backend.complete(ask(tools=[ZOOM_TOOL]))
    assert reply.tool_calls == [ToolCall("call_zoom_1", "zoom", {"box": [0.1, 0.2, 0.5, 0.6]})]
    assert reply.finish_reason == "tool_calls"


def test_tools_are_sent_as_functions(backend, openai_server):
    backend.complete(ask(tools=[ZOOM_TOOL]))
    assert openai_server.last_request.body["tools"] == [{"type": "function", "function": ZOOM_TOOL}]


def test_tool_round_trip_sends_the_call_and_its_result(backend, openai_server):
    openai_server.enqueue_tool_call("zoom", {"box": [0, 0, 1, 1]}, call_id="call_7")
    request = ask(tools=[ZOOM_TOOL])
    reply = backend.complete(request)
    request.messages += [
        Message("assistant", [], tool_calls=reply.tool_calls),
        Message("tool", ["zoomed: a scratch at the rim"], tool_call_id="call_7", tool_name="zoom"),
    ]
    backend.complete(request)
    assistant, tool = openai_server.last_request.body["messages"][2:4]
    assert assistant["tool_calls"] == [
        {
            "id": "call_7",
            "type": "function",
            "function": {"name": "zoom", "arguments": '{"box": [0, 0, 1, 1]}'},
        }
    ]
    assert tool == {"role": "tool", "tool_call_id": "call_7", "content": "zoomed: a scratch at the rim"}


def test_images_in_a_tool_message_move_to_the_following_user_message(backend, openai_server):
    crop = png_image("zoom result 1")
    request = ask(tools=[ZOOM_TOOL])
    request.messages += [
        Message("assistant", [], tool_calls=[ToolCall("call_1", "zoom", {"box": [0, 0, 1, 1]})]),
        Message("tool", ["zoomed", crop], tool_call_id="call_1", tool_name="zoom"),
    ]
    backend.complete(request)
    tool, moved = openai_server.last_request.body["messages"][3:5]
    assert isinstance(tool["content"], str)
    assert moved["role"] == "user"
    assert [p["type"] for p in moved["content"]] == ["text", "text", "image_url"]
    assert moved["content"][1]["text"] == "[image: zoom result 1]"


def test_stream_deltas_reach_on_text_in_order(backend, openai_server):
    openai_server.enqueue_stream(["The ", "surface ", "is ", "clean."])
    seen: list[str] = []
    reply = backend.complete(ask(), on_text=seen.append)
    assert seen == ["The ", "surface ", "is ", "clean."]
    assert reply.text == "The surface is clean."


def test_streaming_request_asks_for_usage_and_reads_it(backend, openai_server):
    openai_server.enqueue_stream(["ok"], usage=(30, 2))
    reply = backend.complete(ask(), on_text=lambda text: None)
    body = openai_server.last_request.body
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})
    assert reply.usage == {"input_tokens": 30, "output_tokens": 2}


def test_streamed_tool_call_is_assembled_from_deltas(backend, openai_server):
    openai_server.enqueue_stream([], tool_calls=[("call_9", "zoom", {"box": [0.25, 0.5, 0.75, 1.0]})])
    reply = backend.complete(ask(tools=[ZOOM_TOOL]), on_text=lambda text: None)
    assert reply.tool_calls == [ToolCall("call_9", "zoom", {"box": [0.25, 0.5, 0.75, 1.0]})]


def test_logprobs_are_requested_and_parsed(backend, openai_server):
    openai_server.enqueue_text_reply("Yes", logprobs=[("Yes", -0.105, {"Yes": -0.105, "No": -2.3})])
    reply = backend.complete(ask(want_logprobs=True))
    body = openai_server.last_request.body
    assert (body["logprobs"], body["top_logprobs"]) == (True, 5)
    assert [(t.token, t.logprob, t.top) for t in reply.logprobs] == [
        ("Yes", -0.105, {"Yes": -0.105, "No": -2.3})
    ]


def test_streamed_logprobs_are_parsed(backend, openai_server):
    openai_server.enqueue_stream(["No"], logprobs=[("No", -0.2, {"No": -0.2, "Yes": -1.7})])
    reply = backend.complete(ask(want_logprobs=True), on_text=lambda text: None)
    assert [(t.token, t.top) for t in reply.logprobs] == [("No", {"No": -0.2, "Yes": -1.7})]


def test_refusal_sets_refused_with_its_text(backend, openai_server):
    openai_server.enqueue_refusal("I can't help with that.")
    reply = backend.complete(ask())
    assert (reply.refused, reply.text) == (True, "I can't help with that.")


def test_truncated_output_reports_finish_reason_length(backend, openai_server):
    openai_server.enqueue_truncated('{"reasoning": "The rim')
    reply = backend.complete(ask())
    assert (reply.finish_reason, reply.text) == ("length", '{"reasoning": "The rim')


# ---- failures and retries ---------------------------------------------------------------------


def test_rate_limit_is_retried_after_the_retry_after_wait(backend, openai_server):
    openai_server.enqueue_error(
        429, error_body("Rate limit reached", "rate_limit_error"), headers={"Retry-After": "0.3"}
    )
    started = time.monotonic()
    reply = backend.complete(ask())
    assert time.monotonic() - started >= 0.3
    assert (reply.text, len(openai_server.requests)) == (VALID_VERDICT_TEXT, 2)


def test_retry_after_beyond_the_cap_is_cut_to_the_cap(backend, openai_server, monkeypatch):
    monkeypatch.setattr(retry, "RETRY_AFTER_CAP_S", 0.05)
    openai_server.enqueue_error(
        429, error_body("slow down", "rate_limit_error"), headers={"Retry-After": "30"}
    )
    started = time.monotonic()
    backend.complete(ask())
    assert time.monotonic() - started < 2.0


def test_server_errors_are_retried_until_an_answer_comes(backend, openai_server):
    openai_server.enqueue_error(500, error_body("internal error", "server_error"))
    openai_server.enqueue_error(503, "upstream unavailable")
    reply = backend.complete(ask())
    assert (reply.text, len(openai_server.requests)) == (VALID_VERDICT_TEXT, 3)


def test_exhausted_retries_raise_backend_error_naming_the_status(backend, openai_server):
    for _ in range(3):
        openai_server.enqueue_error(502, "bad gateway")
    with pytest.raises(BackendError, match=r"after 3 attempts: HTTP 502 .*try again later"):
        backend.complete(ask())


def test_timeout_is_retried_then_reported(openai_server, tmp_path):
    backend = make_backend(openai_server, tmp_path, request_timeout_s=0.2, max_retries=1)
    openai_server.set_default(None, delay=1.0)
    with pytest.raises(BackendError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.2 s"):
        backend.complete(ask())
    assert len(openai_server.requests) == 2


def test_answer_after_a_timeout_is_used(openai_server, tmp_path):
    backend = make_backend(openai_server, tmp_path, request_timeout_s=0.2)
    openai_server.enqueue_delay(1.0)
    assert backend.complete(ask()).text == VALID_VERDICT_TEXT


def test_dropped_connection_is_retried(backend, openai_server):
    openai_server.enqueue_disconnect()
    assert backend.complete(ask()).text == VALID_VERDICT_TEXT


def test_malformed_json_body_is_retried(backend, openai_server):
    openai_server.enqueue_malformed()
    reply = backend.complete(ask())
    assert (reply.text, len(openai_server.requests)) == (VALID_VERDICT_TEXT, 2)


def test_malformed_json_body_without_retries_raises_backend_error(openai_server, tmp_path):
    backend = make_backend(openai_server, tmp_path, max_retries=0)
    openai_server.enqueue_malformed()
    with pytest.raises(BackendError, match="after 1 attempt: malformed reply"):
        backend.complete(ask())


def test_stream_broken_after_text_is_not_retried(backend, openai_server):
    openai_server.enqueue_broken_stream(["The surface "])
    seen: list[str] = []
    with pytest.raises(BackendError, match="broke after part of the answer"):
        backend.complete(ask(), on_text=seen.append)
    assert (seen, len(openai_server.requests)) == (["The surface "], 1)


def test_model_without_vision_raises_config_error_naming_a_vision_model(backend, openai_server):
    openai_server.enqueue_error(
        400, error_body("Invalid content type. image_url is only supported by certain models.")
    )
    with pytest.raises(ConfigError, match="does not accept images.*gpt-4o"):
        backend.complete(ask(png_image("query")))


def test_unrelated_bad_request_is_not_retried(backend, openai_server):
    openai_server.enqueue_error(400, error_body("messages[1]: content must not be empty"))
    with pytest.raises(BackendError, match=r"HTTP 400: messages\[1\]: content must not be empty"):
        backend.complete(ask())
    assert len(openai_server.requests) == 1


def test_rejected_key_raises_config_error(backend, openai_server):
    openai_server.enqueue_error(401, error_body("Incorrect API key provided.", "invalid_request_error"))
    with pytest.raises(ConfigError, match="rejected the API key.*OPENAI_API_KEY"):
        backend.complete(ask())


def test_missing_key_for_the_openai_endpoint_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"set OPENAI_API_KEY.*--backend offline"):
        OpenAIBackend(model_settings(tmp_path))


def test_local_server_without_key_gets_a_placeholder_key(openai_server, tmp_path):
    OpenAIBackend(model_settings(tmp_path, openai_base_url=openai_server.url + "/v1")).complete(ask())
    assert openai_server.last_request.credential_is("authorization", "not-needed")


# ---- feature fallback -------------------------------------------------------------------------


def test_rejected_response_format_is_dropped_and_the_reply_works(backend, openai_server):
    openai_server.reject_field("response_format", "response_format is not supported by this server")
    reply = backend.complete(ask(json_schema=VERDICT_SCHEMA))
    sent = ["response_format" in r.body for r in openai_server.requests]
    assert (sent, reply.text) == ([True, False], VALID_VERDICT_TEXT)


def test_rejected_feature_is_not_sent_again_on_the_next_call(backend, openai_server):
    openai_server.reject_field("response_format", "'json_schema' is not supported")
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    assert ["response_format" in r.body for r in openai_server.requests] == [True, False, False]


def test_rejected_stream_options_keep_streaming_on(backend, openai_server):
    openai_server.reject_field("stream_options", "stream_options: extra inputs are not permitted")
    seen: list[str] = []
    backend.complete(ask(), on_text=seen.append)
    last = openai_server.last_request.body
    assert (last.get("stream"), "stream_options" in last, "".join(seen)) == (True, False, VALID_VERDICT_TEXT)


def test_server_without_streaming_still_delivers_the_text_to_on_text(backend, openai_server):
    openai_server.reject_field("stream", "stream is not supported")
    seen: list[str] = []
    backend.complete(ask(), on_text=seen.append)
    assert ("stream" in openai_server.last_request.body, seen) == (False, [VALID_VERDICT_TEXT])


def test_max_tokens_rejection_switches_to_max_completion_tokens(backend, openai_server):
    openai_server.reject_field(
        "max_tokens",
        "Unsupported parameter: 'max_tokens' is not supported with this "
        "model. Use 'max_completion_tokens' instead.",
    )
    backend.complete(ask(max_tokens=321))
    assert openai_server.last_request.body["max_completion_tokens"] == 321


def test_generic_not_supported_drops_the_optional_extras(backend, openai_server):
    openai_server.enqueue_error(400, error_body("This feature is not supported"))
    backend.complete(ask(json_schema=VERDICT_SCHEMA, want_logprobs=True))
    last = openai_server.last_request.body
    assert ("response_format" in last, "logprobs" in last) == (False, False)


def test_feature_rejected_again_after_fallback_raises_backend_error(backend, openai_server):
    openai_server.enqueue_error(400, error_body("logprobs are not supported"))
    openai_server.enqueue_error(400, error_body("logprobs are not supported"))
    with pytest.raises(BackendError, match="rejected"):
        backend.complete(ask(want_logprobs=True))


# ---- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 400, 429, 500])
def test_fake_key_never_appears_in_errors_or_logs(openai_server, tmp_path, caplog, status):
    backend = make_backend(openai_server, tmp_path, max_retries=1)
    echo = error_body(f"Incorrect API key provided: {FAKE_OPENAI_KEY}. Bearer {FAKE_OPENAI_KEY}")
    for _ in range(2):
        openai_server.enqueue_error(status, echo)
    caplog.set_level(logging.DEBUG)
    with pytest.raises((BackendError, ConfigError)) as caught:
        backend.complete(ask())
    assert FAKE_OPENAI_KEY not in str(caught.value)
    assert FAKE_OPENAI_KEY not in caplog.text


# ---- the fake server under load (the evaluation benchmark relies on it) ----------------------


def test_fake_server_answers_parallel_requests_concurrently(backend, openai_server):
    openai_server.set_default(None, delay=0.3)
    replies: list[str] = []
    threads = [
        threading.Thread(target=lambda: replies.append(backend.complete(ask()).text)) for _ in range(8)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.5
    assert replies == [VALID_VERDICT_TEXT] * 8


# ---- retry policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_is_read_in_seconds(headers, expected):
    assert retry.parse_retry_after(headers) == expected


def test_retry_after_http_date_is_read_as_seconds_from_now():
    from email.utils import formatdate

    seconds = retry.parse_retry_after({"Retry-After": formatdate(time.time() + 5, usegmt=True)})
    assert 3.0 < seconds <= 5.0


def test_configured_key_is_not_sent_to_a_base_url_chosen_at_run_time(openai_server, tmp_path):
    settings = model_settings(tmp_path, openai_api_key=FAKE_OPENAI_KEY)  # configured for api.openai.com
    OpenAIBackend(settings, base_url=openai_server.url + "/v1").complete(ask())
    request = openai_server.last_request
    assert request.credential_is("authorization", "not-needed")
    assert not request.credential_is("authorization", FAKE_OPENAI_KEY)
