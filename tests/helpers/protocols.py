"""The two model protocols side by side, for the backend contract tests (tests/test_backend_contract.py).

A `Protocol` knows how to start its local server, configure its backend for it, script an HTTP
error in the provider's own format, and read back from a recorded request what the backend sent
(the user's parts in order, the images, the system text, the replayed tool call and its result).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from assistant.backends.gemini_backend import GeminiBackend
from assistant.backends.openai_backend import OpenAIBackend
from tests.fixtures_models import (
    FAKE_GEMINI_KEY,
    FAKE_OPENAI_KEY,
    gemini_settings_for,
    model_settings,
    openai_settings_for,
)
from tests.helpers import fake_gemini, fake_openai

GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE"}


@dataclass(frozen=True)
class Protocol:
    name: str
    key: str
    key_header: str
    key_variable: str  # the environment variable a key error names

    def server(self):
        raise NotImplementedError

    def settings(self, server, home, **overrides):
        """Settings whose backend talks to `server` with the fake key."""
        raise NotImplementedError

    def backend(self, server, home, *, base_url: str | None = None, **overrides):
        return self.backend_class(self.settings(server, home, **overrides), base_url=base_url)

    def keyless_backend(self, home, *, server=None):
        """The backend with no key configured (and, with a server, that server configured as its base URL)."""
        overrides = {self.backend_class.url_setting.name: self.base_url(server)} if server else {}
        return self.backend_class(model_settings(home, **overrides))


class OpenAIProtocol(Protocol):
    backend_class = OpenAIBackend

    def server(self):
        return fake_openai.FakeOpenAIServer()

    def settings(self, server, home, **overrides):
        return openai_settings_for(server, home, **overrides)

    def base_url(self, server) -> str:
        return server.url + "/v1"

    def enqueue_status(self, server, status: int, message: str, headers: dict | None = None) -> None:
        server.enqueue_error(status, fake_openai.error_body(message), headers=headers)

    def user_parts(self, body) -> list:
        return [p["text"] if p["type"] == "text" else "IMAGE" for p in body["messages"][1]["content"]]

    def image_data(self, body, index: int) -> bytes:
        images = [p for p in body["messages"][1]["content"] if p["type"] == "image_url"]
        header, data = images[index]["image_url"]["url"].split(",", 1)
        assert header == "data:image/png;base64"
        return base64.b64decode(data)

    def system_text(self, body) -> str:
        first = body["messages"][0]
        assert first["role"] == "system"
        return first["content"]

    def logprobs_requested(self, body) -> int | None:
        """How many alternatives per token were asked for (None: no logprobs asked for)."""
        return body.get("top_logprobs") if body.get("logprobs") else None

    def schema_requested(self, body) -> bool:
        return "response_format" in body

    def tool_names(self, body) -> list[str]:
        """The names of the functions offered in a request."""
        return [t["function"]["name"] for t in body.get("tools", [])]

    def replayed_call(self, body) -> tuple[str, dict, str]:
        call = body["messages"][2]["tool_calls"][0]
        assert call["type"] == "function"
        return call["function"]["name"], json.loads(call["function"]["arguments"]), call["id"]

    def replayed_result(self, body) -> tuple[str, str]:
        message = body["messages"][3]
        assert message["role"] == "tool"
        return message["tool_call_id"], message["content"]

    def images_after_results(self, body) -> list:
        moved = body["messages"][4]
        assert moved["role"] == "user" and isinstance(body["messages"][3]["content"], str)
        return [p["text"] if p["type"] == "text" else "IMAGE" for p in moved["content"]][1:]


class GeminiProtocol(Protocol):
    backend_class = GeminiBackend

    def server(self):
        return fake_gemini.FakeGeminiServer()

    def settings(self, server, home, **overrides):
        return gemini_settings_for(server, home, **overrides)

    def base_url(self, server) -> str:
        return server.url

    def enqueue_status(self, server, status: int, message: str, headers: dict | None = None) -> None:
        server.enqueue_google_error(status, message, GOOGLE_STATUS.get(status, "UNKNOWN"), headers=headers)

    def user_parts(self, body) -> list:
        return [p.get("text", "IMAGE") for p in body["contents"][0]["parts"]]

    def image_data(self, body, index: int) -> bytes:
        images = [p["inlineData"] for p in body["contents"][0]["parts"] if "inlineData" in p]
        assert (images[index].get("mimeType") or images[index].get("mime_type")) == "image/png"
        return base64.b64decode(images[index]["data"])

    def system_text(self, body) -> str:
        assert [c["role"] for c in body["contents"]] == ["user"]  # the system text is not a content turn
        return "".join(p["text"] for p in body["systemInstruction"]["parts"])

    def logprobs_requested(self, body) -> int | None:
        """How many alternatives per token were asked for (None: no logprobs asked for)."""
        config = body.get("generationConfig") or {}
        return config.get("logprobs") if config.get("responseLogprobs") else None

    def schema_requested(self, body) -> bool:
        return "responseJsonSchema" in (body.get("generationConfig") or {})

    def tool_names(self, body) -> list[str]:
        """The names of the functions offered in a request."""
        return [f["name"] for t in body.get("tools", []) for f in t.get("functionDeclarations", [])]

    def replayed_call(self, body) -> tuple[str, dict, str]:
        model_turn = body["contents"][1]
        assert model_turn["role"] == "model"
        call = model_turn["parts"][0]["functionCall"]
        return call["name"], call["args"], call.get("id")

    def replayed_result(self, body) -> tuple[str, str]:
        response = body["contents"][2]["parts"][0]["functionResponse"]
        return response.get("id"), response["response"]["output"]

    def images_after_results(self, body) -> list:
        results, images = body["contents"][2:4]
        assert all("functionResponse" in p for p in results["parts"]) and images["role"] == "user"
        return [p.get("text", "IMAGE") for p in images["parts"]][1:]


OPENAI = OpenAIProtocol("openai", FAKE_OPENAI_KEY, "authorization", "OPENAI_API_KEY")
GEMINI = GeminiProtocol("gemini", FAKE_GEMINI_KEY, "x-goog-api-key", "GEMINI_API_KEY")
PROTOCOLS = (OPENAI, GEMINI)
