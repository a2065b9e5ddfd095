"""The local protocol servers check each request against the provider's wire types: a malformed request
is answered 400 and fails the test that sent it (when its `with` block ends)."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.fake_gemini import FakeGeminiServer
from tests.helpers.fake_openai import FakeOpenAIServer


def _leaving_fails(server) -> str:
    with pytest.raises(AssertionError, match="malformed request") as failure:
        server.__exit__(None, None, None)
    return str(failure.value)


def test_a_malformed_openai_request_is_answered_400_and_fails_the_test():
    import openai

    server = FakeOpenAIServer().start()
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="test-key", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="robot"):
        client.chat.completions.create(model="m", messages=[{"role": "robot", "content": "hi"}])
    assert "robot" in _leaving_fails(server)


@pytest.mark.parametrize("body, word", [
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tempreature": 0}, "tempreature"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"uri": "x"}}]}]},
     "url"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema"}},
     "json_schema"),
])
def test_openai_wire_schema_catches_unknown_fields_missing_fields_and_wrong_shapes(body, word):
    with FakeOpenAIServer() as server:
        reply = httpx.post(server.url + "/v1/chat/completions", json=body)
        assert reply.status_code == 400 and word in reply.json()["error"]["message"]
        assert word in server.take_malformed()[0]


def test_a_malformed_gemini_request_is_answered_400_and_fails_the_test():
    server = FakeGeminiServer().start()
    body = {"contents": [{"role": "user", "parts": [{"txt": "hi"}]}], "generationConfig": {"temperature": 0}}
    reply = httpx.post(server.url + "/v1beta/models/gemini-2.5-flash:generateContent", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "txt" in _leaving_fails(server)


def test_gemini_wire_schema_catches_a_misspelt_generation_setting():
    with FakeGeminiServer() as server:
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"responseSchemaJson": {}}}
        assert httpx.post(server.url + "/v1beta/models/m:generateContent", json=body).status_code == 400
        assert "responseSchemaJson" in server.take_malformed()[0]


def test_well_formed_requests_from_both_sdks_pass(tmp_path):
    from assistant.backends.gemini_backend import GeminiBackend
    from assistant.backends.openai_backend import OpenAIBackend
    from assistant.prompts import VERDICT_SCHEMA
    from tests.fixtures_models import ZOOM_TOOL, ask, gemini_settings_for, openai_settings_for, png_image

    with FakeOpenAIServer() as openai_server, FakeGeminiServer() as gemini_server:
        for backend in (OpenAIBackend(openai_settings_for(openai_server, tmp_path)),
                        GeminiBackend(gemini_settings_for(gemini_server, tmp_path))):
            backend.complete(ask("look", png_image("query"), json_schema=VERDICT_SCHEMA, want_logprobs=True))
            backend.complete(ask("look", png_image("query"), tools=[ZOOM_TOOL]), on_text=lambda text: None)
        assert len(openai_server.requests) == len(gemini_server.requests) == 2
        assert openai_server.malformed == gemini_server.malformed == []
