"""What every network backend does, checked against both local protocol servers (OpenAI and Gemini).

Each test runs once per protocol (tests/helpers/protocols.py reads each wire format); what only one
protocol does is tested in tests/test_backend_openai.py and tests/test_backend_gemini.py.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from assistant.backends import retry
from assistant.backends.base import Message, ModelRequest, ToolCall
from assistant.prompts import VERDICT_SCHEMA
from tests.fixtures_models import ZOOM_TOOL, ask, png_image
from tests.helpers.fake_openai import VALID_VERDICT_TEXT
from tests.helpers.protocols import PROTOCOLS
from tools.errors import BackendError, ConfigError

pytestmark = pytest.mark.usefixtures("fast_backoff")


@pytest.fixture(params=PROTOCOLS, ids=lambda p: p.name)
def protocol(request):
    return request.param


@pytest.fixture
def server(protocol):
    with protocol.server() as running:
        yield running


@pytest.fixture
def backend(protocol, server, tmp_path):
    return protocol.backend(server, tmp_path)


def round_trip(call: ToolCall, result_parts: list) -> ModelRequest:
    request = ask(tools=[ZOOM_TOOL])
    request.messages += [Message("assistant", [], tool_calls=[call]),
                         Message("tool", result_parts, tool_call_id=call.id, tool_name=call.name)]
    return request


# ---- what is sent -----------------------------------------------------------------------------


def test_images_are_sent_in_order_each_after_its_caption(protocol, backend, server):
    backend.complete(ask("Compare:", png_image("reference"), png_image("query"), "Answer in JSON."))
    assert protocol.user_parts(server.last_request.body) == [
        "Compare:", "[image: reference]", "IMAGE", "[image: query]", "IMAGE", "Answer in JSON."]


def test_image_data_decodes_to_the_png_that_was_given(protocol, backend, server):
    image = png_image("query", color=(1, 2, 3))
    backend.complete(ask(image))
    assert protocol.image_data(server.last_request.body, 0) == image.data


def test_system_text_goes_first_as_the_system_instruction(protocol, backend, server):
    backend.complete(ask(system="You are a strict inspector."))
    assert protocol.system_text(server.last_request.body) == "You are a strict inspector."


def test_api_key_is_sent_in_its_header_and_redacted_in_the_record(protocol, backend, server):
    backend.complete(ask())
    request = server.last_request
    assert request.credential_is(protocol.key_header, protocol.key)
    assert protocol.key not in str(request.headers) + str(request.query)


def test_json_schema_is_asked_for_only_when_given(protocol, backend, server):
    backend.complete(ask(json_schema=VERDICT_SCHEMA))
    backend.complete(ask())
    assert [protocol.schema_requested(r.body) for r in server.requests] == [True, False]


def test_base_url_given_to_the_backend_wins_over_the_settings(protocol, server, tmp_path):
    settings_url = {protocol.backend_class.url_setting.name: "http://127.0.0.1:9/v1"}
    protocol.backend(server, tmp_path, base_url=protocol.base_url(server), **settings_url).complete(ask())
    assert len(server.requests) == 1


# ---- the key policy: a key goes only to the endpoint it was configured for ---------------------


def test_configured_key_is_not_sent_to_a_base_url_chosen_at_run_time(protocol, server, tmp_path):
    settings_url = {protocol.backend_class.url_setting.name: None}  # configured for the provider's cloud
    protocol.backend(server, tmp_path, base_url=protocol.base_url(server), **settings_url).complete(ask())
    request = server.last_request
    assert request.credential_is(protocol.key_header, "not-needed")
    assert not request.credential_is(protocol.key_header, protocol.key)


def test_a_configured_server_without_a_key_gets_a_placeholder_key(protocol, server, tmp_path):
    protocol.keyless_backend(tmp_path, server=server).complete(ask())
    assert server.last_request.credential_is(protocol.key_header, "not-needed")


def test_missing_key_for_the_providers_cloud_raises_config_error_naming_the_variable(protocol, tmp_path):
    with pytest.raises(ConfigError, match=rf"set {protocol.key_variable}.*--backend offline"):
        protocol.keyless_backend(tmp_path)


# ---- what comes back --------------------------------------------------------------------------


def test_reply_text_and_usage_are_returned(backend, server):
    server.enqueue_text_reply(VALID_VERDICT_TEXT, usage=(120, 42))
    reply = backend.complete(ask())
    assert (reply.text, reply.usage, reply.finish_reason) == (
        VALID_VERDICT_TEXT, {"input_tokens": 120, "output_tokens": 42}, "stop")


def test_tool_call_is_returned_as_a_tool_call(backend, server):
    server.enqueue_tool_call("zoom", {"box": [0.1, 0.2, 0.5, 0.6]}, call_id="call_zoom_1")
    reply = backend.complete(ask(tools=[ZOOM_TOOL]))
    assert (reply.tool_calls, reply.finish_reason) == (
        [ToolCall("call_zoom_1", "zoom", {"box": [0.1, 0.2, 0.5, 0.6]})], "tool_calls")


def test_tool_round_trip_sends_the_call_then_its_result(protocol, backend, server):
    server.enqueue_tool_call("zoom", {"box": [0, 0, 1, 1]}, call_id="call_7")
    reply = backend.complete(ask(tools=[ZOOM_TOOL]))
    backend.complete(round_trip(reply.tool_calls[0], ["zoomed: a scratch at the rim"]))
    body = server.last_request.body
    assert protocol.replayed_call(body) == ("zoom", {"box": [0, 0, 1, 1]}, "call_7")
    assert protocol.replayed_result(body) == ("call_7", "zoomed: a scratch at the rim")


def test_images_from_a_tool_follow_its_result_in_a_user_message(protocol, backend, server):
    call = ToolCall("call_1", "zoom", {"box": [0, 0, 1, 1]})
    backend.complete(round_trip(call, ["zoomed", png_image("zoom result 1")]))
    assert protocol.images_after_results(server.last_request.body) == ["[image: zoom result 1]", "IMAGE"]


def test_stream_deltas_reach_on_text_in_order(backend, server):
    server.enqueue_stream(["The ", "surface ", "is ", "clean."])
    seen: list[str] = []
    reply = backend.complete(ask(), on_text=seen.append)
    assert (seen, reply.text) == (["The ", "surface ", "is ", "clean."], "The surface is clean.")


def test_logprobs_are_requested_and_parsed(protocol, backend, server):
    server.enqueue_text_reply("Yes", logprobs=[("Yes", -0.105, {"Yes": -0.105, "No": -2.3})])
    reply = backend.complete(ask(want_logprobs=True))
    assert protocol.logprobs_requested(server.last_request.body) == 5
    assert [(t.token, t.logprob, t.top) for t in reply.logprobs] == [("Yes", -0.105, {"Yes": -0.105, "No": -2.3})]


def test_truncated_output_reports_finish_reason_length(backend, server):
    server.enqueue_truncated('{"reasoning": "The rim')
    reply = backend.complete(ask())
    assert (reply.finish_reason, reply.text) == ("length", '{"reasoning": "The rim')


# ---- failures and retries ---------------------------------------------------------------------


def test_rate_limit_is_retried_after_the_retry_after_wait(protocol, backend, server):
    """Both providers' 429 may carry Retry-After (Gemini's RetryInfo is tested in its own file)."""
    protocol.enqueue_status(server, 429, "Rate limit reached", headers={"Retry-After": "0.3"})
    started = time.monotonic()
    reply = backend.complete(ask())
    assert time.monotonic() - started >= 0.3
    assert (reply.text, len(server.requests)) == (VALID_VERDICT_TEXT, 2)


def test_retry_after_beyond_the_cap_is_cut_to_the_cap(protocol, backend, server, monkeypatch):
    monkeypatch.setattr(retry, "RETRY_AFTER_CAP_S", 0.05)
    protocol.enqueue_status(server, 429, "slow down", headers={"Retry-After": "30"})
    started = time.monotonic()
    backend.complete(ask())
    assert time.monotonic() - started < 2.0


def test_server_errors_are_retried_until_an_answer_comes(protocol, backend, server):
    protocol.enqueue_status(server, 500, "internal error")
    protocol.enqueue_status(server, 503, "The model is overloaded")
    reply = backend.complete(ask())
    assert (reply.text, len(server.requests)) == (VALID_VERDICT_TEXT, 3)


def test_exhausted_retries_raise_backend_error_naming_the_status(protocol, backend, server):
    for _ in range(3):
        protocol.enqueue_status(server, 502, "bad gateway")
    with pytest.raises(BackendError, match=rf"{protocol.name} request failed after 3 attempts: HTTP 502 .*try again later"):
        backend.complete(ask())


def test_timeout_is_retried_then_reported(protocol, server, tmp_path):
    backend = protocol.backend(server, tmp_path, request_timeout_s=0.2, max_retries=1)
    server.set_default(None, delay=1.0)
    with pytest.raises(BackendError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.2 s"):
        backend.complete(ask())
    assert len(server.requests) == 2


def test_answer_after_a_timeout_is_used(protocol, server, tmp_path):
    backend = protocol.backend(server, tmp_path, request_timeout_s=0.2)
    server.enqueue_delay(1.0)
    assert backend.complete(ask()).text == VALID_VERDICT_TEXT


def test_dropped_connection_is_retried(backend, server):
    server.enqueue_disconnect()
    assert backend.complete(ask()).text == VALID_VERDICT_TEXT


def test_malformed_json_body_is_retried(backend, server):
    server.enqueue_malformed()
    reply = backend.complete(ask())
    assert (reply.text, len(server.requests)) == (VALID_VERDICT_TEXT, 2)


def test_malformed_json_body_without_retries_raises_backend_error(protocol, server, tmp_path):
    backend = protocol.backend(server, tmp_path, max_retries=0)
    server.enqueue_malformed()
    with pytest.raises(BackendError, match="after 1 attempt: malformed reply"):
        backend.complete(ask())


def test_stream_broken_after_text_is_not_retried(backend, server):
    server.enqueue_broken_stream(["The surface "])
    seen: list[str] = []
    with pytest.raises(BackendError, match="broke after part of the answer"):
        backend.complete(ask(), on_text=seen.append)
    assert (seen, len(server.requests)) == (["The surface "], 1)


def test_unrelated_bad_request_is_not_retried(protocol, backend, server):
    protocol.enqueue_status(server, 400, "contents: parts must not be empty")
    with pytest.raises(BackendError, match=r"HTTP 400: contents: parts must not be empty"):
        backend.complete(ask())
    assert len(server.requests) == 1


def test_rejected_key_raises_config_error_naming_the_variable(protocol, backend, server):
    protocol.enqueue_status(server, 401, "Incorrect API key provided.")
    with pytest.raises(ConfigError, match=rf"rejected the API key.*{protocol.key_variable}"):
        backend.complete(ask())


def test_unknown_model_raises_config_error(protocol, backend, server):
    protocol.enqueue_status(server, 404, "models/gemini-9 is not found")
    with pytest.raises(ConfigError, match="not found.*--model"):
        backend.complete(ask())


# ---- feature fallback -------------------------------------------------------------------------


def test_rejected_logprobs_are_dropped_and_not_sent_again(protocol, backend, server):
    protocol.enqueue_status(server, 400, "logprobs are not supported for this model")
    first = backend.complete(ask(want_logprobs=True))
    backend.complete(ask(want_logprobs=True))
    assert [protocol.logprobs_requested(r.body) for r in server.requests] == [5, None, None]
    assert first.text == VALID_VERDICT_TEXT


def test_feature_rejected_again_after_fallback_raises_backend_error(protocol, backend, server):
    for _ in range(2):
        protocol.enqueue_status(server, 400, "logprobs are not supported")
    with pytest.raises(BackendError, match="rejected"):
        backend.complete(ask(want_logprobs=True))


# ---- secrets and load ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
def test_fake_key_never_appears_in_errors_or_logs(protocol, server, tmp_path, caplog, status):
    backend = protocol.backend(server, tmp_path, max_retries=1)
    for _ in range(2):
        protocol.enqueue_status(server, status, f"Incorrect API key provided: {protocol.key}. Bearer {protocol.key}")
    caplog.set_level(logging.DEBUG)
    with pytest.raises((BackendError, ConfigError)) as caught:
        backend.complete(ask())
    assert protocol.key not in str(caught.value)
    assert protocol.key not in caplog.text


def test_one_backend_answers_parallel_requests_concurrently(backend, server):
    server.set_default(None, delay=0.3)
    replies: list[str] = []
    threads = [threading.Thread(target=lambda: replies.append(backend.complete(ask()).text)) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.5
    assert replies == [VALID_VERDICT_TEXT] * 8


# ---- retry policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "expected"), [({"Retry-After": "2"}, 2.0), ({"retry-after-ms": "250"}, 0.25),
                                                   ({"Retry-After": "soon"}, None), ({}, None)])
def test_retry_after_header_is_read_in_seconds(headers, expected):
    assert retry.parse_retry_after(headers) == expected


def test_retry_after_http_date_is_read_as_seconds_from_now():
    from email.utils import formatdate

    seconds = retry.parse_retry_after({"Retry-After": formatdate(time.time() + 5, usegmt=True)})
    assert 3.0 < seconds <= 5.0
