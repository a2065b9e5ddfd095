"""Google Gemini through google-genai (the maintained SDK; google-generativeai reached end of life).

Our agent runs the tool loop, so automatic function calling is off and function calls come back as
`ToolCall`s. Gemini 2.x refuses JSON mode together with function calling, so JSON mode is asked
for only in calls without tools (the prompt asks for JSON anyway). Gemini 3 wants each function
call's thought signature sent back with the history: signatures are kept per call id.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from urllib.parse import urlsplit

import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from assistant.backends.base import Backend, ModelReply, ModelRequest, TextSink, register_backend
from assistant.backends.gemini_mapping import ReplyAssembler, build_config, to_contents
from assistant.backends.retry import (
    FeatureRejected,
    FeatureSwitch,
    MalformedReply,
    is_retryable_status,
    malformed_failure,
    one_line,
    parse_retry_after,
    retry_info_delay,
    run_request,
    status_failure,
    transport_failure,
)
from tools.errors import BackendError, ConfigError

FEATURE_WORDS = (
    (
        "json_mode",
        ("json mode", "mime type", "mime_type", "mimetype", "json schema", "json_schema", "jsonschema"),
    ),
    ("logprobs", ("logprobs",)),
)
KEY_WORDS = ("api key", "api_key")


@register_backend
class GeminiBackend(Backend):
    """Gemini: images, function calling, JSON schema, logprobs and streaming."""

    name = "gemini"
    default_model = "gemini-2.5-flash"
    supports_streaming = True

    def __init__(self, settings, *, model: str | None = None, base_url: str | None = None):
        super().__init__(settings, model=model, base_url=base_url)
        if not settings.gemini_api_key:
            raise ConfigError(
                "no Gemini API key: set GEMINI_API_KEY or GOOGLE_API_KEY, or use --backend offline"
            )
        self._key = settings.gemini_api_key.reveal()
        self.base_url = base_url or settings.gemini_base_url
        self.host = urlsplit(self.base_url).netloc if self.base_url else "generativelanguage.googleapis.com"
        options = types.HttpOptions(base_url=self.base_url, timeout=int(settings.request_timeout_s * 1000))
        self._client = genai.Client(api_key=self._key, vertexai=False, http_options=options)
        self.features = FeatureSwitch()
        self._signatures: OrderedDict[str, bytes] = OrderedDict()  # tool-call id -> thought signature

    def complete(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelReply:
        """Send the request; retries and feature fallback included. Raises BackendError or ConfigError."""
        system, contents = to_contents(request.messages, self._signatures, _needs_signatures(self.model))

        def attempt(off: frozenset[str]) -> ModelReply:
            config, sent = build_config(request, system, off)
            try:
                return self._send(contents, config, on_text)
            except Exception as exc:  # noqa: BLE001 - every SDK failure is classified below
                failure = self._failure(exc, sent)
                if failure is exc:
                    raise
                raise failure from None

        return run_request(
            attempt, switch=self.features, retries=self.settings.max_retries, provider="gemini"
        )

    def _send(
        self, contents: list[types.Content], config: types.GenerateContentConfig, on_text: TextSink | None
    ) -> ModelReply:
        assembler = ReplyAssembler(on_text)
        models = self._client.models
        if on_text is None:
            assembler.feed(models.generate_content(model=self.model, contents=contents, config=config))
        else:
            try:
                for chunk in models.generate_content_stream(
                    model=self.model, contents=contents, config=config
                ):
                    assembler.feed(chunk)
            except Exception as exc:
                if assembler.emitted:  # a retry would show the person the same text twice
                    raise BackendError(
                        f"gemini stream from {self.host} broke after part of the answer "
                        f"({one_line(exc, [self._key])}); ask again"
                    ) from None
                raise
        self._remember(assembler.signatures)
        return assembler.reply()

    def _remember(self, signatures: dict[str, bytes]) -> None:
        self._signatures.update(signatures)
        while len(self._signatures) > 1024:
            self._signatures.popitem(last=False)

    def _failure(self, exc: Exception, sent: set[str]) -> Exception:
        """The error to raise for an SDK failure: transient, feature, config or backend error."""
        if isinstance(exc, genai_errors.APIError):
            return self._status_failure(exc, sent)
        if isinstance(exc, (json.JSONDecodeError, MalformedReply, pydantic.ValidationError)):
            return malformed_failure(self.host, exc, [self._key])
        return transport_failure(exc, host=self.host, timeout_s=self.settings.request_timeout_s) or exc

    def _status_failure(self, exc: genai_errors.APIError, sent: set[str]) -> Exception:
        code = exc.code or 0
        message = one_line(exc.message or exc.details, [self._key])
        if is_retryable_status(code):
            wait = parse_retry_after(getattr(exc.response, "headers", None))
            return status_failure(
                code, self.host, message, wait if wait is not None else retry_info_delay(exc.details)
            )
        if code in (401, 403) or any(word in message.lower() for word in KEY_WORDS):
            return ConfigError(
                f"Gemini rejected the API key (HTTP {code}: {message}); check GEMINI_API_KEY "
                "or GOOGLE_API_KEY, or use --backend offline"
            )
        if code == 404:
            return ConfigError(
                f"Gemini model {self.model!r} was not found (HTTP 404: {message}); check --model"
            )
        lowered = message.lower()
        for feature, words in FEATURE_WORDS:
            if feature in sent and any(word in lowered for word in words):
                return FeatureRejected({feature}, f"HTTP {code}: {message}")
        return BackendError(
            f"gemini request rejected (HTTP {code}: {message}); check the model name and settings"
        )


def _needs_signatures(model: str) -> bool:
    """Gemini 3 and later reject replayed function calls that carry no thought signature."""
    match = re.search(r"gemini-(\d+)", model or "")
    return bool(match) and int(match.group(1)) >= 3
