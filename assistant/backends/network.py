"""What the backends that call a provider over the network share, in one place for every provider:
the key policy, retries with backoff, feature fallback, and telling failures apart.

A subclass is one provider. It declares its settings, its endpoint and the words its server uses
for rejected features, builds its SDK client (`connect`), maps a request (`prepare`, `call`), sends
it (`send`) and names what an SDK exception was (`status_of`, `transport_of`, `malformed_types`);
the message mapping itself lives in its pure *_mapping module. SDKs are imported in those methods
only, so that reading the registry never imports them.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import urlsplit

from assistant.backends.base import Backend, ModelReply, ModelRequest, TextSink
from assistant.backends.retry import (
    FeatureRejected,
    FeatureSwitch,
    MalformedReply,
    is_retryable_status,
    malformed_failure,
    one_line,
    run_request,
    status_failure,
    transport_failure,
)
from assistant.backends.urls import shown_host
from assistant.config import Secret
from tools.errors import BackendError, ConfigError

PLACEHOLDER_KEY = "not-needed"  # what a server that is not the provider's own gets instead of a key
KEY_WORDS = ("api key", "api_key")  # a rejection that names the key is about the key, whatever its status
# A 400 that only says "not supported" drops the extras a plain server most often lacks.
UNSUPPORTED_WORDS = ("not supported", "unsupported", "unrecognized", "not implemented", "unknown parameter")


class NetworkBackend(Backend):
    """A provider reached over HTTP: subclasses declare it and implement the hooks below."""

    default_url: ClassVar[str] = ""  # the provider's own endpoint
    cloud_domain: ClassVar[str] = ""  # its hosts (this domain and below) need a real key
    costs_money = True
    # (feature, words a rejection uses for it): first match wins; features are the names `call` reports
    feature_words: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]] = ()
    unsupported_extras: ClassVar[tuple[str, ...]] = ()  # what a bare "not supported" switches off

    def __init__(self, settings, *, model: str | None = None, base_url: str | None = None):
        super().__init__(settings, model=model)
        self.base_url = (base_url or self.configured_url(settings)).rstrip("/")
        self.host = shown_host(self.base_url)
        self._key = self.key_for(settings, self.base_url)
        self.features = FeatureSwitch()
        self._client = self.connect()

    # -- the provider: endpoint and key -------------------------------------------------------------
    @classmethod
    def configured_url(cls, settings) -> str:
        """The endpoint the settings configure (the provider's own when none is set)."""
        configured = getattr(settings, cls.url_setting.name, None) if cls.url_setting else None
        return (configured or cls.default_url).rstrip("/")

    def key_for(self, settings, base_url: str) -> Secret:
        """The key policy, the same for every provider: the configured key goes only to the configured
        endpoint; a base URL chosen at run time (e.g. in the app) gets a placeholder, and the
        provider's own cloud without a key is a configuration error. The key stays a Secret until
        `connect` hands it to the SDK client."""
        key = getattr(settings, self.key_setting.name, None) if self.key_setting else None
        if key and base_url == self.configured_url(settings):
            return key
        if self._is_cloud(base_url):
            raise ConfigError(self._missing_key())
        return Secret(PLACEHOLDER_KEY)

    def _is_cloud(self, base_url: str) -> bool:
        host = (urlsplit(base_url).hostname or "").lower()
        return bool(self.cloud_domain) and (host == self.cloud_domain or host.endswith("." + self.cloud_domain))

    def _missing_key(self) -> str:
        local = ""
        if self.url_setting and self.url_setting.env:
            local = f" (or point {self.url_setting.env[0]} at a local {self.label}-compatible server)"
        return f"no {self.label} API key: set {self._key_variables()}{local}, or use --backend offline"

    def _key_variables(self) -> str:
        return " or ".join(self.key_setting.env) if self.key_setting else "the API key"

    # -- the hooks a provider implements ----------------------------------------------------------------
    def connect(self) -> Any:
        """The provider's SDK client for self.base_url and self._key (revealed here, and only here)."""
        raise NotImplementedError

    def prepare(self, request: ModelRequest) -> Any:
        """The request's messages in the provider's format (once per request)."""
        raise NotImplementedError

    def call(self, request: ModelRequest, prepared, off: frozenset[str], streaming: bool) -> tuple[Any, set[str]]:
        """One call's arguments without the features in `off`, and the optional features they carry."""
        raise NotImplementedError

    def send(self, call, on_text: TextSink | None) -> ModelReply:
        """Send one call (streaming when on_text is given) and read the reply."""
        raise NotImplementedError

    def status_of(self, exc: Exception) -> tuple[int, str, float | None] | None:
        """(HTTP status, the server's message, seconds it asks to wait) when exc is an HTTP error."""
        return None

    def transport_of(self, exc: Exception) -> Exception | None:
        """The TransientError for an SDK's own timeout or connection exception, else None."""
        return None

    def malformed_types(self) -> tuple[type, ...]:
        """The SDK's exceptions for a reply that is not a usable completion."""
        return ()

    def rejection(self, status: int, message: str, has_images: bool) -> Exception | None:
        """A provider-specific reading of a rejected request (e.g. a model without vision), else None."""
        return None

    # -- one logical request ---------------------------------------------------------------------------
    def complete(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelReply:
        """Send the request; retries and feature fallback included. Raises BackendError or ConfigError."""
        prepared = self.prepare(request)
        has_images = any(m.images for m in request.messages)

        def attempt(off: frozenset[str]) -> ModelReply:
            call, sent = self.call(request, prepared, off, streaming=on_text is not None)
            try:
                return self.send(call, on_text)
            except Exception as exc:  # noqa: BLE001 - every SDK failure is classified below
                failure = self.failure(exc, sent, has_images)
                if failure is exc:
                    raise
                raise failure from None

        return run_request(attempt, switch=self.features, retries=self.settings.max_retries, provider=self.name)

    def stream(self, chunks, assembler) -> None:
        """Feed stream chunks to an assembler; a stream that breaks after text reached the person is
        not retried (a retry would show them the same text twice)."""
        try:
            for chunk in chunks:
                assembler.feed(chunk)
        except Exception as exc:
            if assembler.emitted:
                raise BackendError(f"{self.name} stream from {self.host} broke after part of the answer "
                                   f"({one_line(exc, [self._key])}); ask again") from None
            raise

    def failure(self, exc: Exception, sent: set[str], has_images: bool) -> Exception:
        """The error to raise for an SDK failure: transient, feature, config or backend error."""
        status = self.status_of(exc)
        if status is not None:
            return self._status_failure(*status, sent, has_images)
        if isinstance(exc, (json.JSONDecodeError, MalformedReply, *self.malformed_types())):
            return malformed_failure(self.host, exc, [self._key])
        timeout = self.settings.request_timeout_s
        return self.transport_of(exc) or transport_failure(exc, host=self.host, timeout_s=timeout) or exc

    def _status_failure(self, status: int, message: str, wait: float | None, sent: set[str],
                        has_images: bool) -> Exception:
        message = one_line(message, [self._key])
        if is_retryable_status(status):
            return status_failure(status, self.host, message, wait)
        if status in (401, 403) or any(word in message.lower() for word in KEY_WORDS):
            return ConfigError(f"the server at {self.host} rejected the API key (HTTP {status}: {message}); "
                               f"check {self._key_variables()}, or use --backend offline")
        if status == 404:
            where = f" and {self.url_setting.env[0]}" if self.url_setting and self.url_setting.env else ""
            return ConfigError(f"model {self.model!r} or its endpoint was not found at {self.base_url} "
                               f"(HTTP 404: {message}); check --model{where}")
        specific = self.rejection(status, message, has_images)
        if specific is not None:
            return specific
        features = rejected_features(message, sent, self.feature_words, self.unsupported_extras)
        if features:
            return FeatureRejected(features, f"HTTP {status}: {message}")
        return BackendError(f"{self.name} request rejected by {self.host} (HTTP {status}: {message}); "
                            "check the model name and the request settings")


def rejected_features(message: str, sent: set[str], feature_words, extras=()) -> set[str]:
    """The request features a rejection says the server does not support (only ones that were sent)."""
    lowered = message.lower()
    for feature, words in feature_words:
        if feature in sent and any(word in lowered for word in words):
            return {feature}
    if any(word in lowered for word in UNSUPPORTED_WORDS):
        return set(sent) & set(extras)
    return set()
