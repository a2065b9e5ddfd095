"""OpenAI Chat Completions through the openai SDK; with a base URL, any OpenAI-compatible server.

Ollama (http://localhost:11434/v1), vLLM, LM Studio, llama.cpp server and Gemini's OpenAI
endpoint all speak this protocol, each with its own gaps: a feature the server rejects with a 400
(response_format, logprobs, streaming usage, ...) is switched off for this backend instance and
the request sent again. The SDK's own retries are off; `retry.run_request` applies ours.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import openai

from assistant.backends.base import Backend, ModelReply, ModelRequest, TextSink, register_backend
from assistant.backends.openai_mapping import (
    StreamAssembler,
    build_options,
    reply_from_completion,
    to_openai_messages,
)
from assistant.backends.retry import (
    FeatureRejected,
    FeatureSwitch,
    MalformedReply,
    connection_failure,
    is_retryable_status,
    malformed_failure,
    one_line,
    parse_retry_after,
    run_request,
    status_failure,
    timeout_failure,
    transport_failure,
)
from tools.errors import BackendError, ConfigError

OPENAI_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, but the SDK insists on one

# A 400 naming one of these words is about that request feature (first match wins: "stream_options"
# must not switch off streaming itself).
FEATURE_WORDS = (
    ("max_tokens", ("max_completion_tokens",)),
    ("stream_usage", ("stream_options", "include_usage")),
    ("logprobs", ("logprobs",)),
    ("response_format", ("response_format", "json_schema", "structured output")),
    ("temperature", ("temperature",)),
    ("stream", ("stream",)),
    ("tools", ("tool_choice", "tools", "function calling")),
)
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
# A 400 that only says "not supported" drops the extras a plain server most often lacks.
UNSUPPORTED_WORDS = ("not supported", "unsupported", "unrecognized", "not implemented", "unknown parameter")
UNSUPPORTED_EXTRAS = ("logprobs", "response_format", "stream_usage")
IMAGE_WORDS = ("image", "vision", "multimodal", "multi-modal")
REFUSAL_WORDS = ("support", "only", "not a ", "cannot", "can't")


@register_backend
class OpenAIBackend(Backend):
    """Chat Completions: images, tools, JSON schema, logprobs and streaming, each when the server has it."""

    name = "openai"
    default_model = "gpt-4o"
    supports_streaming = True

    def __init__(self, settings, *, model: str | None = None, base_url: str | None = None):
        super().__init__(settings, model=model, base_url=base_url)
        self.base_url = (base_url or settings.openai_base_url or OPENAI_URL).rstrip("/")
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self._key = _api_key(settings, self.base_url)
        self._client = openai.OpenAI(
            api_key=self._key, base_url=self.base_url, timeout=settings.request_timeout_s, max_retries=0
        )
        self.features = FeatureSwitch()

    def complete(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelReply:
        """Send the request; retries and feature fallback included. Raises BackendError or ConfigError."""
        messages = to_openai_messages(request.messages)
        has_images = any(m.images for m in request.messages)

        def attempt(off: frozenset[str]) -> ModelReply:
            options = build_options(request, off, streaming=on_text is not None)
            try:
                return self._send(messages, options, on_text)
            except Exception as exc:  # noqa: BLE001 - every SDK failure is classified below
                failure = self._failure(exc, options, has_images)
                if failure is exc:
                    raise
                raise failure from None

        return run_request(
            attempt, switch=self.features, retries=self.settings.max_retries, provider="openai"
        )

    def _send(self, messages: list[dict], options: dict, on_text: TextSink | None) -> ModelReply:
        response = self._client.chat.completions.create(model=self.model, messages=messages, **options)
        if not options.get("stream"):
            reply = reply_from_completion(response)
            if on_text is not None and reply.text:  # streaming is off for this server: one delta
                on_text(reply.text)
            return reply
        assembler = StreamAssembler(on_text)
        try:
            for chunk in response:
                assembler.feed(chunk)
        except Exception as exc:
            if assembler.emitted:  # a retry would show the person the same text twice
                raise BackendError(
                    f"openai stream from {self.host} broke after part of the answer "
                    f"({one_line(exc, [self._key])}); ask again"
                ) from None
            raise
        finally:
            response.close()
        return assembler.reply()

    def _failure(self, exc: Exception, options: dict, has_images: bool) -> Exception:
        """The error to raise for an SDK failure: transient, feature, config or backend error."""
        timeout = self.settings.request_timeout_s
        if isinstance(exc, openai.APITimeoutError):
            return timeout_failure(self.host, timeout)
        if isinstance(exc, openai.APIConnectionError):
            return connection_failure(self.host)
        if isinstance(exc, openai.APIStatusError):
            return self._status_failure(exc, options, has_images)
        if isinstance(exc, (json.JSONDecodeError, MalformedReply, openai.APIResponseValidationError)):
            return malformed_failure(self.host, exc, [self._key])
        return transport_failure(exc, host=self.host, timeout_s=timeout) or exc

    def _status_failure(self, exc: openai.APIStatusError, options: dict, has_images: bool) -> Exception:
        status = exc.status_code
        message = one_line(_server_message(exc), [self._key])
        if is_retryable_status(status):
            return status_failure(status, self.host, message, parse_retry_after(exc.response.headers))
        if status in (401, 403):
            return ConfigError(
                f"the server at {self.host} rejected the API key (HTTP {status}: {message}); "
                "check OPENAI_API_KEY, or use --backend offline"
            )
        if status == 404:
            return ConfigError(
                f"model {self.model!r} or its endpoint was not found at {self.base_url} "
                f"(HTTP 404: {message}); check --model and OPENAI_BASE_URL"
            )
        if has_images and _refuses_images(message):
            return ConfigError(
                f"model {self.model!r} does not accept images ({message}); choose a "
                "vision-capable model, e.g. gpt-4o, or qwen2.5vl / llava on Ollama"
            )
        features = rejected_features(message, options)
        if features:
            return FeatureRejected(features, f"HTTP {status}: {message}")
        return BackendError(
            f"openai request rejected by {self.host} (HTTP {status}: {message}); "
            "check the model name and the request settings"
        )


def rejected_features(message: str, options: dict) -> set[str]:
    """The request features a 400 message says the server does not support (only ones we sent)."""
    lowered = message.lower()
    sent = {feature for feature, option in FEATURE_OPTION.items() if option in options}
    for feature, words in FEATURE_WORDS:
        if feature in sent and any(word in lowered for word in words):
            return {feature}
    if any(word in lowered for word in UNSUPPORTED_WORDS):
        return sent & set(UNSUPPORTED_EXTRAS)
    return set()


def _refuses_images(message: str) -> bool:
    lowered = message.lower()
    return any(w in lowered for w in IMAGE_WORDS) and any(w in lowered for w in REFUSAL_WORDS)


def _server_message(exc: openai.APIStatusError) -> str:
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


def _is_openai_cloud(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    return host == "openai.com" or host.endswith(".openai.com")


def _api_key(settings, base_url: str) -> str:
    # The configured key goes only to the configured endpoint: a base URL chosen at run time
    # (for example in the app's settings) must not receive it.
    configured = (settings.openai_base_url or OPENAI_URL).rstrip("/")
    if settings.openai_api_key and base_url == configured:
        return settings.openai_api_key.reveal()
    if _is_openai_cloud(base_url):
        raise ConfigError(
            "no OpenAI API key: set OPENAI_API_KEY (or point OPENAI_BASE_URL at a local "
            "OpenAI-compatible server), or use --backend offline"
        )
    return PLACEHOLDER_KEY
