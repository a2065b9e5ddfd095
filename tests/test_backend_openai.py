"""What only the OpenAI backend does, against a real local Chat Completions server (tests/helpers/fake_openai.py).

What every network backend does is tested for both protocols in tests/test_backend_contract.py.
"""

from __future__ import annotations

import pytest

from assistant.backends.openai_backend import OpenAIBackend
from assistant.prompts import VERDICT_SCHEMA
from tests.fixtures_models import ZOOM_TOOL, ask, openai_settings_for, png_image
from tests.helpers.fake_openai import VALID_VERDICT_TEXT, error_body
from tools.errors import BackendError, ConfigError

pytestmark = pytest.mark.usefixtures("fast_backoff")


@pytest.fixture
def backend(openai_server, tmp_path) -> OpenAIBackend:
    return OpenAIBackend(openai_settings_for(openai_server, tmp_path))


# ---- what is sent -----------------------------------------------------------------------------


def test_text_only_user_message_is_sent_as_a_plain_string(backend, openai_server):
    backend.complete(ask("Is the screw bag complete?"))
    assert openai_server.last_request.body["messages"][1]["content"] == "Is the screw bag complete?"


def test_json_schema_is_sent_as_strict_response_format(backend, openai_server):
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    assert openai_server.last_request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": VERDICT_SCHEMA, "strict": True},
    }


def test_model_and_sdk_retries_off_are_sent(backend, openai_server):
    backend.complete(ask())
    request = openai_server.last_request
    assert (request.body["model"], request.header("x-stainless-retry-count")) == ("gpt-4o", "0")


def test_tools_are_sent_as_functions(backend, openai_server):
    backend.complete(ask(tools=[ZOOM_TOOL]))
    assert openai_server.last_request.body["tools"] == [{"type": "function", "function": ZOOM_TOOL}]


# ---- what comes back --------------------------------------------------------------------------


def test_reply_names_the_model_that_answered(backend, openai_server):
    assert backend.complete(ask()).model == "gpt-4o"


def test_streaming_request_asks_for_usage_and_reads_it(backend, openai_server):
    openai_server.enqueue_stream(["ok"], usage=(30, 2))
    reply = backend.complete(ask(), on_text=lambda text: None)
    body = openai_server.last_request.body
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})
    assert reply.usage == {"input_tokens": 30, "output_tokens": 2}


def test_streamed_tool_call_is_assembled_from_deltas(backend, openai_server):
    from assistant.backends.base import ToolCall

    openai_server.enqueue_stream([], tool_calls=[("call_9", "zoom", {"box": [0.25, 0.5, 0.75, 1.0]})])
    reply = backend.complete(ask(tools=[ZOOM_TOOL]), on_text=lambda text: None)
    assert reply.tool_calls == [ToolCall("call_9", "zoom", {"box": [0.25, 0.5, 0.75, 1.0]})]


def test_streamed_logprobs_are_parsed(backend, openai_server):
    openai_server.enqueue_stream(["No"], logprobs=[("No", -0.2, {"No": -0.2, "Yes": -1.7})])
    reply = backend.complete(ask(want_logprobs=True), on_text=lambda text: None)
    assert [(t.token, t.top) for t in reply.logprobs] == [("No", {"No": -0.2, "Yes": -1.7})]


def test_refusal_sets_refused_with_its_text(backend, openai_server):
    openai_server.enqueue_refusal("I can't help with that.")
    reply = backend.complete(ask())
    assert (reply.refused, reply.text) == (True, "I can't help with that.")


def test_plain_text_error_bodies_are_retried_and_quoted(backend, openai_server):
    openai_server.enqueue_error(503, "upstream unavailable")
    assert backend.complete(ask()).text == VALID_VERDICT_TEXT
    openai_server.enqueue_error(400, "the proxy refused the request")
    with pytest.raises(BackendError, match=r"HTTP 400: the proxy refused the request"):
        backend.complete(ask())


def test_model_without_vision_raises_config_error_naming_a_vision_model(backend, openai_server):
    openai_server.enqueue_error(
        400, error_body("Invalid content type. image_url is only supported by certain models.")
    )
    with pytest.raises(ConfigError, match="does not accept images.*gpt-4o"):
        backend.complete(ask(png_image("query")))


# ---- feature fallback: what OpenAI-compatible servers lack -------------------------------------


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
