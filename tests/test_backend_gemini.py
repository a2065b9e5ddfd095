"""The Gemini backend against a real local Gemini API server (tests/helpers/fake_gemini.py)."""

from __future__ import annotations

import base64
import logging
import time

import pytest

from assistant.backends.base import Message, ModelRequest, ToolCall
from assistant.backends.gemini_backend import GeminiBackend
from assistant.backends.gemini_mapping import SKIP_SIGNATURE, build_config
from assistant.prompts import VERDICT_SCHEMA
from tests.fixtures_models import (
    FAKE_GEMINI_KEY,
    ZOOM_TOOL,
    ask,
    gemini_settings_for,
    model_settings,
    png_image,
)
from tests.helpers.fake_openai import VALID_VERDICT_TEXT
from tools.errors import BackendError, ConfigError

pytestmark = pytest.mark.usefixtures("fast_backoff")


@pytest.fixture
def backend(gemini_server, tmp_path) -> GeminiBackend:
    return GeminiBackend(gemini_settings_for(gemini_server, tmp_path))


def make_backend(server, tmp_path, model: str | None = None, **overrides) -> GeminiBackend:
    return GeminiBackend(gemini_settings_for(server, tmp_path, **overrides), model=model)


def config_of(server) -> dict:
    return server.last_request.body.get("generationConfig") or {}


def tool_round_trip_request(call: ToolCall, result_parts: list) -> ModelRequest:
    request = ask(tools=[ZOOM_TOOL])
    request.messages += [
        Message("assistant", [], tool_calls=[call]),
        Message("tool", result_parts, tool_call_id=call.id, tool_name=call.name),
    ]
    return request


# ---- what is sent -----------------------------------------------------------------------------


def test_request_goes_to_generate_content_of_the_model(backend, gemini_server):
    backend.complete(ask())
    assert gemini_server.last_request.path.endswith("/models/gemini-2.5-flash:generateContent")


def test_images_are_sent_inline_in_order_each_after_its_caption(backend, gemini_server):
    backend.complete(ask("Compare:", png_image("reference"), png_image("query"), "Answer in JSON."))
    parts = gemini_server.last_request.body["contents"][0]["parts"]
    summary = [p.get("text", "IMAGE") for p in parts]
    assert summary == [
        "Compare:",
        "[image: reference]",
        "IMAGE",
        "[image: query]",
        "IMAGE",
        "Answer in JSON.",
    ]


def test_inline_image_data_decodes_to_the_png_that_was_given(backend, gemini_server):
    image = png_image("query", color=(9, 8, 7))
    backend.complete(ask(image))
    inline = gemini_server.last_request.body["contents"][0]["parts"][1]["inlineData"]
    assert (inline.get("mimeType") or inline.get("mime_type"), base64.b64decode(inline["data"])) == (
        "image/png",
        image.data,
    )


def test_system_text_is_sent_as_system_instruction(backend, gemini_server):
    backend.complete(ask(system="You are a strict inspector."))
    body = gemini_server.last_request.body
    assert body["systemInstruction"]["parts"] == [{"text": "You are a strict inspector."}]
    assert [c["role"] for c in body["contents"]] == ["user"]


def test_api_key_is_sent_in_the_goog_header_and_redacted_in_the_record(backend, gemini_server):
    backend.complete(ask())
    request = gemini_server.last_request
    assert request.credential_is("x-goog-api-key", FAKE_GEMINI_KEY)
    assert FAKE_GEMINI_KEY not in str(request.headers) + str(request.query)


def test_json_schema_is_sent_as_response_json_schema(backend, gemini_server):
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    config = config_of(gemini_server)
    assert (config["responseMimeType"], config["responseJsonSchema"]) == ("application/json", VERDICT_SCHEMA)


def test_json_mode_is_left_out_when_tools_are_offered(backend, gemini_server):
    backend.complete(ask(json_schema=VERDICT_SCHEMA, tools=[ZOOM_TOOL]))
    sent = [
        (
            "responseMimeType" in (r.body.get("generationConfig") or {}),
            r.body["tools"][0]["functionDeclarations"][0]["name"],
        )
        for r in gemini_server.requests
    ]
    assert sent == [(False, "zoom")]


def test_temperature_and_token_limit_are_sent(backend, gemini_server):
    backend.complete(ask(temperature=0.0, max_tokens=333))
    assert (config_of(gemini_server)["temperature"], config_of(gemini_server)["maxOutputTokens"]) == (
        0.0,
        333,
    )


def test_automatic_function_calling_is_disabled():
    config, _ = build_config(ask(tools=[ZOOM_TOOL]), "system", frozenset())
    assert config.automatic_function_calling.disable is True


# ---- what comes back --------------------------------------------------------------------------


def test_reply_text_and_usage_are_returned(backend, gemini_server):
    gemini_server.enqueue_text_reply(VALID_VERDICT_TEXT, usage=(250, 60))
    reply = backend.complete(ask())
    assert (reply.text, reply.usage, reply.finish_reason) == (
        VALID_VERDICT_TEXT,
        {"input_tokens": 250, "output_tokens": 60},
        "stop",
    )


def test_function_call_is_returned_as_a_tool_call(backend, gemini_server):
    gemini_server.enqueue_tool_call("zoom", {"box": [0.1, 0.2, 0.3, 0.4]}, call_id="fc-1")
    reply = backend.complete(ask(tools=[ZOOM_TOOL]))
    assert (reply.tool_calls, reply.finish_reason) == (
        [ToolCall("fc-1", "zoom", {"box": [0.1, 0.2, 0.3, 0.4]})],
        "tool_calls",
    )


def test_tool_round_trip_sends_the_call_then_the_function_response(backend, gemini_server):
    gemini_server.enqueue_tool_call("zoom", {"box": [0, 0, 1, 1]}, call_id="fc-7")
    reply = backend.complete(ask(tools=[ZOOM_TOOL]))
    backend.complete(tool_round_trip_request(reply.tool_calls[0], ["zoomed: a scratch at the rim"]))
    model_turn, response_turn = gemini_server.last_request.body["contents"][1:3]
    assert model_turn["role"] == "model"
    assert model_turn["parts"][0]["functionCall"] == {
        "name": "zoom",
        "args": {"box": [0, 0, 1, 1]},
        "id": "fc-7",
    }
    assert response_turn["parts"][0]["functionResponse"] == {
        "name": "zoom",
        "id": "fc-7",
        "response": {"output": "zoomed: a scratch at the rim"},
    }


def test_tool_images_follow_the_function_response_in_a_user_turn(backend, gemini_server):
    call = ToolCall("fc-1", "zoom", {"box": [0, 0, 1, 1]})
    backend.complete(tool_round_trip_request(call, ["zoomed", png_image("zoom result 1")]))
    response_turn, images_turn = gemini_server.last_request.body["contents"][2:4]
    assert ["functionResponse" in p for p in response_turn["parts"]] == [True]
    assert images_turn["role"] == "user"
    assert [p.get("text", "IMAGE") for p in images_turn["parts"]][1:] == ["[image: zoom result 1]", "IMAGE"]


def test_call_without_id_gets_a_local_id_that_is_not_sent_back(backend, gemini_server):
    gemini_server.enqueue_tool_call("zoom", {"box": [0, 0, 1, 1]})
    call = backend.complete(ask(tools=[ZOOM_TOOL])).tool_calls[0]
    backend.complete(tool_round_trip_request(call, ["zoomed"]))
    model_turn, response_turn = gemini_server.last_request.body["contents"][1:3]
    assert call.id
    assert (
        "id" in model_turn["parts"][0]["functionCall"],
        "id" in response_turn["parts"][0]["functionResponse"],
    ) == (False, False)


def test_thought_signature_is_sent_back_with_its_function_call(backend, gemini_server):
    gemini_server.enqueue_tool_call(
        "zoom", {"box": [0, 0, 1, 1]}, call_id="fc-2", thought_signature=b"opaque-sig"
    )
    call = backend.complete(ask(tools=[ZOOM_TOOL])).tool_calls[0]
    backend.complete(tool_round_trip_request(call, ["zoomed"]))
    part = gemini_server.last_request.body["contents"][1]["parts"][0]
    assert base64.b64decode(part["thoughtSignature"]) == b"opaque-sig"


def test_gemini_3_call_without_a_signature_gets_the_skip_sentinel(gemini_server, tmp_path):
    backend = make_backend(gemini_server, tmp_path, model="gemini-3-flash-preview")
    backend.complete(tool_round_trip_request(ToolCall("fc-x", "zoom", {"box": [0, 0, 1, 1]}), ["zoomed"]))
    part = gemini_server.last_request.body["contents"][1]["parts"][0]
    assert base64.b64decode(part["thoughtSignature"]) == SKIP_SIGNATURE


def test_stream_deltas_reach_on_text_in_order(backend, gemini_server):
    gemini_server.enqueue_stream(["The ", "surface ", "is ", "clean."])
    seen: list[str] = []
    reply = backend.complete(ask(), on_text=seen.append)
    assert (seen, reply.text) == (["The ", "surface ", "is ", "clean."], "The surface is clean.")


def test_streaming_uses_the_sse_endpoint(backend, gemini_server):
    backend.complete(ask(), on_text=lambda text: None)
    request = gemini_server.last_request
    assert (request.path.endswith(":streamGenerateContent"), request.query) == (True, {"alt": "sse"})


def test_logprobs_are_requested_and_parsed(backend, gemini_server):
    gemini_server.enqueue_text_reply("Yes", logprobs=[("Yes", -0.1, {"Yes": -0.1, "No": -2.4})])
    reply = backend.complete(ask(want_logprobs=True))
    config = config_of(gemini_server)
    assert (config["responseLogprobs"], config["logprobs"]) == (True, 5)
    assert [(t.token, t.logprob, t.top) for t in reply.logprobs] == [("Yes", -0.1, {"Yes": -0.1, "No": -2.4})]


def test_blocked_prompt_is_a_refusal(backend, gemini_server):
    gemini_server.enqueue_blocked("SAFETY")
    reply = backend.complete(ask())
    assert (reply.refused, reply.finish_reason, "SAFETY" in reply.text) == (True, "content_filter", True)


def test_safety_stop_is_a_refusal(backend, gemini_server):
    gemini_server.enqueue_safety_stop()
    reply = backend.complete(ask())
    assert (reply.refused, reply.finish_reason) == (True, "content_filter")


def test_truncated_output_reports_finish_reason_length(backend, gemini_server):
    gemini_server.enqueue_truncated('{"reasoning": "The rim')
    reply = backend.complete(ask())
    assert (reply.finish_reason, reply.text) == ("length", '{"reasoning": "The rim')


# ---- failures and retries ---------------------------------------------------------------------


def test_rate_limit_retry_info_delay_is_honoured(backend, gemini_server):
    gemini_server.enqueue_google_error(429, "Quota exceeded", "RESOURCE_EXHAUSTED", retry_delay="0.3s")
    started = time.monotonic()
    reply = backend.complete(ask())
    assert time.monotonic() - started >= 0.3
    assert (reply.text, len(gemini_server.requests)) == (VALID_VERDICT_TEXT, 2)


def test_rate_limit_retry_after_header_is_honoured(backend, gemini_server):
    gemini_server.enqueue_google_error(
        429, "Quota exceeded", "RESOURCE_EXHAUSTED", headers={"Retry-After": "0.3"}
    )
    started = time.monotonic()
    backend.complete(ask())
    assert time.monotonic() - started >= 0.3


def test_server_errors_are_retried_until_an_answer_comes(backend, gemini_server):
    gemini_server.enqueue_google_error(500, "Internal error", "INTERNAL")
    gemini_server.enqueue_google_error(503, "The model is overloaded", "UNAVAILABLE")
    reply = backend.complete(ask())
    assert (reply.text, len(gemini_server.requests)) == (VALID_VERDICT_TEXT, 3)


def test_exhausted_retries_raise_backend_error_naming_the_status(backend, gemini_server):
    for _ in range(3):
        gemini_server.enqueue_google_error(503, "The model is overloaded", "UNAVAILABLE")
    with pytest.raises(BackendError, match=r"gemini request failed after 3 attempts: HTTP 503 .*overloaded"):
        backend.complete(ask())


def test_timeout_is_retried_then_reported(gemini_server, tmp_path):
    backend = make_backend(gemini_server, tmp_path, request_timeout_s=0.2, max_retries=1)
    gemini_server.set_default(None, delay=1.0)
    with pytest.raises(BackendError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.2 s"):
        backend.complete(ask())
    assert len(gemini_server.requests) == 2


def test_dropped_connection_is_retried(backend, gemini_server):
    gemini_server.enqueue_disconnect()
    assert backend.complete(ask()).text == VALID_VERDICT_TEXT


def test_malformed_json_body_is_retried(backend, gemini_server):
    gemini_server.enqueue_malformed('{"candidates": [')
    reply = backend.complete(ask())
    assert (reply.text, len(gemini_server.requests)) == (VALID_VERDICT_TEXT, 2)


def test_malformed_json_body_without_retries_raises_backend_error(gemini_server, tmp_path):
    backend = make_backend(gemini_server, tmp_path, max_retries=0)
    gemini_server.enqueue_malformed('{"candidates": [')
    with pytest.raises(BackendError, match="after 1 attempt: malformed reply"):
        backend.complete(ask())


def test_json_mode_rejected_by_the_model_is_dropped_and_remembered(backend, gemini_server):
    gemini_server.enqueue_google_error(
        400, "JSON mode is not enabled for models/gemma-3-27b-it", "INVALID_ARGUMENT"
    )
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    sent = ["responseMimeType" in (r.body.get("generationConfig") or {}) for r in gemini_server.requests]
    assert sent == [True, False, False]


def test_unsupported_logprobs_are_dropped(backend, gemini_server):
    gemini_server.enqueue_google_error(
        400, "Logprobs is not enabled for models/gemini-2.5-flash", "INVALID_ARGUMENT"
    )
    reply = backend.complete(ask(want_logprobs=True))
    assert ("responseLogprobs" in config_of(gemini_server), reply.text) == (False, VALID_VERDICT_TEXT)


def test_unrelated_bad_request_is_not_retried(backend, gemini_server):
    gemini_server.enqueue_google_error(400, "contents: parts must not be empty", "INVALID_ARGUMENT")
    with pytest.raises(BackendError, match="HTTP 400: contents: parts must not be empty"):
        backend.complete(ask())
    assert len(gemini_server.requests) == 1


def test_invalid_key_raises_config_error(backend, gemini_server):
    gemini_server.enqueue_google_error(
        400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"
    )
    with pytest.raises(ConfigError, match="rejected the API key.*GEMINI_API_KEY"):
        backend.complete(ask())


def test_unknown_model_raises_config_error(backend, gemini_server):
    gemini_server.enqueue_google_error(404, "models/gemini-9 is not found", "NOT_FOUND")
    with pytest.raises(ConfigError, match="not found.*--model"):
        backend.complete(ask())


def test_missing_key_raises_config_error_naming_both_variables(tmp_path):
    with pytest.raises(ConfigError, match=r"set GEMINI_API_KEY or GOOGLE_API_KEY, or use --backend offline"):
        GeminiBackend(model_settings(tmp_path))


@pytest.mark.parametrize(
    ("code", "status"),
    [(400, "INVALID_ARGUMENT"), (403, "PERMISSION_DENIED"), (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL")],
)
def test_fake_key_never_appears_in_errors_or_logs(gemini_server, tmp_path, caplog, code, status):
    backend = make_backend(gemini_server, tmp_path, max_retries=1)
    for _ in range(2):
        gemini_server.enqueue_google_error(code, f"API key {FAKE_GEMINI_KEY} is not valid", status)
    caplog.set_level(logging.DEBUG)
    with pytest.raises((BackendError, ConfigError)) as caught:
        backend.complete(ask())
    assert FAKE_GEMINI_KEY not in str(caught.value)
    assert FAKE_GEMINI_KEY not in caplog.text
