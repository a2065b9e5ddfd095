"""What only the Gemini backend does, against a real local Gemini API server (tests/helpers/fake_gemini.py).

What every network backend does is tested for both protocols in tests/test_backend_contract.py.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from assistant.backends.base import Message, ModelRequest, ToolCall
from assistant.backends.gemini_backend import GeminiBackend
from assistant.backends.gemini_mapping import SKIP_SIGNATURE, VERDICT_FUNCTION, build_config
from assistant.prompts import VERDICT_SCHEMA
from tests.fixtures_models import ZOOM_TOOL, ask, gemini_settings_for, model_settings
from tests.helpers.fake_openai import VALID_VERDICT, VALID_VERDICT_TEXT
from tools.errors import ConfigError

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


def test_json_schema_is_sent_as_response_json_schema(backend, gemini_server):
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    config = config_of(gemini_server)
    assert (config["responseMimeType"], config["responseJsonSchema"]) == ("application/json", VERDICT_SCHEMA)


def test_with_tools_the_verdict_is_asked_for_as_a_function_bound_to_the_schema(backend, gemini_server):
    backend.complete(ask(json_schema=VERDICT_SCHEMA, tools=[ZOOM_TOOL]))
    body = gemini_server.last_request.body
    assert "responseMimeType" not in (body.get("generationConfig") or {})  # Gemini 2.x refuses JSON mode with tools
    declarations = {d["name"]: d for d in body["tools"][0]["functionDeclarations"]}
    assert set(declarations) == {"zoom", VERDICT_FUNCTION}
    schema = declarations[VERDICT_FUNCTION].get("parametersJsonSchema") or declarations[VERDICT_FUNCTION].get(
        "parameters_json_schema")
    assert schema == VERDICT_SCHEMA
    # every turn must call a function: a tool, or the verdict; never free prose
    assert body["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"


def test_the_verdict_function_call_is_the_answer_not_a_tool_call(backend, gemini_server):
    gemini_server.enqueue_tool_call(VERDICT_FUNCTION, VALID_VERDICT)
    reply = backend.complete(ask(json_schema=VERDICT_SCHEMA, tools=[ZOOM_TOOL]))
    assert reply.tool_calls == [] and json.loads(reply.text) == VALID_VERDICT


def test_without_a_schema_no_verdict_function_is_offered(backend, gemini_server):
    backend.complete(ask(tools=[ZOOM_TOOL]))
    body = gemini_server.last_request.body
    assert [d["name"] for d in body["tools"][0]["functionDeclarations"]] == ["zoom"] and "toolConfig" not in body


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


def test_streaming_uses_the_sse_endpoint(backend, gemini_server):
    backend.complete(ask(), on_text=lambda text: None)
    request = gemini_server.last_request
    assert (request.path.endswith(":streamGenerateContent"), request.query) == (True, {"alt": "sse"})


def test_blocked_prompt_is_a_refusal(backend, gemini_server):
    gemini_server.enqueue_blocked("SAFETY")
    reply = backend.complete(ask())
    assert (reply.refused, reply.finish_reason, "SAFETY" in reply.text) == (True, "content_filter", True)


def test_safety_stop_is_a_refusal(backend, gemini_server):
    gemini_server.enqueue_safety_stop()
    reply = backend.complete(ask())
    assert (reply.refused, reply.finish_reason) == (True, "content_filter")


# ---- failures and retries ---------------------------------------------------------------------


def test_rate_limit_retry_info_delay_is_honoured(backend, gemini_server):
    gemini_server.enqueue_google_error(429, "Quota exceeded", "RESOURCE_EXHAUSTED", retry_delay="0.3s")
    started = time.monotonic()
    reply = backend.complete(ask())
    assert time.monotonic() - started >= 0.3
    assert (reply.text, len(gemini_server.requests)) == (VALID_VERDICT_TEXT, 2)


def test_json_mode_rejected_by_the_model_is_dropped_and_remembered(backend, gemini_server):
    gemini_server.enqueue_google_error(
        400, "JSON mode is not enabled for models/gemma-3-27b-it", "INVALID_ARGUMENT"
    )
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    sent = ["responseMimeType" in (r.body.get("generationConfig") or {}) for r in gemini_server.requests]
    assert sent == [True, False, False]


def test_invalid_key_raises_config_error(backend, gemini_server):
    gemini_server.enqueue_google_error(
        400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"
    )
    with pytest.raises(ConfigError, match="rejected the API key.*GEMINI_API_KEY"):
        backend.complete(ask())


def test_missing_key_raises_config_error_naming_both_variables(tmp_path):
    with pytest.raises(ConfigError, match=r"set GEMINI_API_KEY or GOOGLE_API_KEY, or use --backend offline"):
        GeminiBackend(model_settings(tmp_path))


