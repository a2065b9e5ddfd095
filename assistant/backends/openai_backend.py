"""OpenAI Chat Completions through the openai SDK; with a base URL, any OpenAI-compatible server.

Ollama (http://localhost:11434/v1), vLLM, LM Studio, llama.cpp server and Gemini's OpenAI
endpoint all speak this protocol, each with its own gaps: a feature the server rejects with a 400
(response_format, logprobs, streaming usage, ...) is switched off for this backend instance and
the request sent again. The SDK's own retries are off; the shared network base applies ours.
"""

from __future__ import annotations

from assistant.backends.base import ModelReply, ModelRequest, ProviderSetting, TextSink
from assistant.backends.network import NetworkBackend
from assistant.backends.openai_mapping import (
    StreamAssembler,
    build_options,
    reply_from_completion,
    to_openai_messages,
)
from assistant.backends.registry import register_backend
from assistant.backends.retry import connection_failure, parse_retry_after, timeout_failure
from tools.errors import ConfigError

# The request option that carries each feature (to tell whether it was sent at all).
FEATURE_OPTION = {
    "max_tokens": "max_tokens",
    "stream_usage": "stream_options",
    "logprobs": "logprobs",
    "response_format": "response_format",
    "temperature": "temperature",
    "stream": "stream",
    "tools": "tools",
}
IMAGE_WORDS = ("image", "vision", "multimodal", "multi-modal")
REFUSAL_WORDS = ("support", "only", "not a ", "cannot", "can't")


@register_backend
class OpenAIBackend(NetworkBackend):
    """Chat Completions: images, tools, JSON schema, logprobs and streaming, each when the server has it."""

    name = "openai"
    label = "OpenAI"
    default_model = "gpt-4o"
    models = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano")
    prices = {  # USD per 1M input, output tokens: approximate 2025 list prices (assistant/evaluation/costs.py)
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "gpt-4-turbo": (10.00, 30.00),
    }
    key_setting = ProviderSetting("openai_api_key", ("OPENAI_API_KEY",), secret=True)
    url_setting = ProviderSetting("openai_base_url", ("OPENAI_BASE_URL",))
    default_url = "https://api.openai.com/v1"
    cloud_domain = "openai.com"
    supports_streaming = True
    # "stream_options" must not switch off streaming itself, so stream_usage comes first.
    feature_words = (
        ("max_tokens", ("max_completion_tokens",)),
        ("stream_usage", ("stream_options", "include_usage")),
        ("logprobs", ("logprobs",)),
        ("response_format", ("response_format", "json_schema", "structured output")),
        ("temperature", ("temperature",)),
        ("stream", ("stream",)),
        ("tools", ("tool_choice", "tools", "function calling")),
    )
    unsupported_extras = ("logprobs", "response_format", "stream_usage")

    @classmethod
    def is_configured(cls, settings) -> bool:
        """A key, or a base URL alone (a local OpenAI-compatible server needs no key)."""
        return super().is_configured(settings) or bool(getattr(settings, cls.url_setting.name, None))

    def connect(self):
        import openai

        return openai.OpenAI(api_key=self._key.reveal(), base_url=self.base_url, timeout=self.settings.request_timeout_s,
                             max_retries=0)

    def prepare(self, request: ModelRequest) -> list[dict]:
        return to_openai_messages(request.messages)

    def call(self, request: ModelRequest, prepared, off: frozenset[str], streaming: bool):
        options = build_options(request, off, streaming)
        sent = {feature for feature, option in FEATURE_OPTION.items() if option in options}
        return {"messages": prepared, **options}, sent

    def send(self, call: dict, on_text: TextSink | None) -> ModelReply:
        response = self._client.chat.completions.create(model=self.model, **call)
        if not call.get("stream"):
            reply = reply_from_completion(response)
            if on_text is not None and reply.text:  # streaming is off for this server: one delta
                on_text(reply.text)
            return reply
        assembler = StreamAssembler(on_text)
        try:
            self.stream(response, assembler)
        finally:
            response.close()
        return assembler.reply()

    def status_of(self, exc: Exception):
        import openai

        if not isinstance(exc, openai.APIStatusError):
            return None
        return exc.status_code, _server_message(exc), parse_retry_after(exc.response.headers)

    def transport_of(self, exc: Exception):
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return timeout_failure(self.host, self.settings.request_timeout_s)
        if isinstance(exc, openai.APIConnectionError):
            return connection_failure(self.host)
        return None

    def malformed_types(self) -> tuple[type, ...]:
        import openai

        return (openai.APIResponseValidationError,)

    def rejection(self, status: int, message: str, has_images: bool):
        if has_images and _refuses_images(message):
            return ConfigError(f"model {self.model!r} does not accept images ({message}); choose a "
                               "vision-capable model, e.g. gpt-4o, or qwen2.5vl / llava on Ollama")
        return None


def _refuses_images(message: str) -> bool:
    lowered = message.lower()
    return any(w in lowered for w in IMAGE_WORDS) and any(w in lowered for w in REFUSAL_WORDS)


def _server_message(exc) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if body.get("message"):
            return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body
    return exc.message or ""
