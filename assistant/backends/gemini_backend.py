"""Google Gemini through google-genai (the maintained SDK; google-generativeai reached end of life).

Our agent runs the tool loop, so automatic function calling is off and function calls come back as
`ToolCall`s. Gemini 2.x refuses JSON mode together with function calling, so a structured verdict
is asked for by JSON mode in calls without tools, and as a verdict function bound to the schema
(with function calling forced) in calls with tools (gemini_mapping.build_config): verdicts never
depend on reading prose. Gemini 3 wants each function call's thought signature sent back with the
history: signatures are kept per call id.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from assistant.backends.base import ModelReply, ModelRequest, ProviderSetting, TextSink
from assistant.backends.network import NetworkBackend
from assistant.backends.registry import register_backend
from assistant.backends.retry import parse_retry_after, retry_info_delay

MAX_SIGNATURES = 1024  # thought signatures kept per backend, oldest dropped first


@register_backend
class GeminiBackend(NetworkBackend):
    """Gemini: images, function calling, JSON schema, logprobs and streaming."""

    name = "gemini"
    label = "Gemini"
    default_model = "gemini-2.5-flash"
    models = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash")
    prices = {  # USD per 1M input, output tokens: approximate 2025 list prices (assistant/evaluation/costs.py)
        "gemini-2.5-pro": (1.25, 10.00),
        "gemini-2.5-flash": (0.30, 2.50),
        "gemini-2.0-flash": (0.10, 0.40),
        "gemini-1.5-pro": (1.25, 5.00),
        "gemini-1.5-flash": (0.075, 0.30),
    }
    key_setting = ProviderSetting("gemini_api_key", ("GEMINI_API_KEY", "GOOGLE_API_KEY"), secret=True)
    url_setting = ProviderSetting("gemini_base_url")
    default_url = "https://generativelanguage.googleapis.com"
    cloud_domain = "googleapis.com"
    supports_streaming = True
    feature_words = (
        ("json_mode", ("json mode", "mime type", "mime_type", "mimetype", "json schema", "json_schema", "jsonschema",
                       "tool_config", "toolconfig", "function calling config", "functioncallingconfig")),
        ("logprobs", ("logprobs",)),
    )

    def __init__(self, settings, *, model: str | None = None, base_url: str | None = None):
        self._signatures: OrderedDict[str, bytes] = OrderedDict()  # tool-call id -> thought signature
        self._signatures_lock = threading.Lock()  # one backend serves several threads in an evaluation
        super().__init__(settings, model=model, base_url=base_url)

    def connect(self):
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=self.base_url, timeout=int(self.settings.request_timeout_s * 1000))
        return genai.Client(api_key=self._key.reveal(), vertexai=False, http_options=options)

    def prepare(self, request: ModelRequest):
        from assistant.backends.gemini_mapping import to_contents

        with self._signatures_lock:
            return to_contents(request.messages, dict(self._signatures), _needs_signatures(self.model))

    def call(self, request: ModelRequest, prepared, off: frozenset[str], streaming: bool):
        from assistant.backends.gemini_mapping import build_config

        system, contents = prepared
        config, sent = build_config(request, system, off)
        return (contents, config), sent

    def send(self, call, on_text: TextSink | None) -> ModelReply:
        from assistant.backends.gemini_mapping import ReplyAssembler

        contents, config = call
        assembler = ReplyAssembler(on_text)
        models = self._client.models
        if on_text is None:
            assembler.feed(models.generate_content(model=self.model, contents=contents, config=config))
        else:
            self.stream(models.generate_content_stream(model=self.model, contents=contents, config=config), assembler)
        self._remember(assembler.signatures)
        return assembler.reply()

    def _remember(self, signatures: dict[str, bytes]) -> None:
        with self._signatures_lock:
            self._signatures.update(signatures)
            while len(self._signatures) > MAX_SIGNATURES:
                self._signatures.popitem(last=False)

    def status_of(self, exc: Exception):
        from google.genai import errors

        if not isinstance(exc, errors.APIError):
            return None
        wait = parse_retry_after(getattr(exc.response, "headers", None))
        return exc.code or 0, str(exc.message or exc.details), wait if wait is not None else retry_info_delay(exc.details)

    def malformed_types(self) -> tuple[type, ...]:
        import pydantic

        return (pydantic.ValidationError,)


def _needs_signatures(model: str) -> bool:
    """Gemini 3 and later reject replayed function calls that carry no thought signature."""
    match = re.search(r"gemini-(\d+)", model or "")
    return bool(match) and int(match.group(1)) >= 3
