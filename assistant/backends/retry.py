"""Retries, backoff and feature fallback shared by the network backends (one policy for all).

A backend turns each SDK failure into one of three kinds and lets `run_request` apply the policy:
- `TransientError` (429, 5xx, timeout, connection, malformed reply): retried with exponential
  backoff, honouring Retry-After up to a cap; when the retries run out it becomes a `BackendError`.
- `FeatureRejected` (a 400 naming a request feature the server does not support): the request is
  sent again without that feature, and the backend instance remembers it for later calls.
- anything else (`ConfigError`, `BackendError`) goes straight to the caller.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import math
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

from tools.errors import BackendError

if TYPE_CHECKING:
    from assistant.config import Secret

log = logging.getLogger(__name__)

T = TypeVar("T")

# Module attributes rather than settings so that tests can shrink them (monkeypatch).
BACKOFF_BASE_S = 0.5  # first wait; doubles on each retry
BACKOFF_MAX_S = 20.0  # longest computed wait
RETRY_AFTER_CAP_S = 30.0  # longest wait a server's Retry-After may impose

RETRYABLE_STATUS = frozenset({408, 409, 429})
_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_.\-]{6,}|AIza[A-Za-z0-9_\-]{10,})")


class TransientError(Exception):
    """A failure worth retrying; `summary` and `advice` end up in the final BackendError."""

    def __init__(self, summary: str, advice: str, *, retry_after: float | None = None):
        super().__init__(summary)
        self.summary = summary
        self.advice = advice
        self.retry_after = retry_after


class MalformedReply(ValueError):
    """The server answered 200 but not with a usable completion."""


class FeatureRejected(Exception):
    """The server refused optional request features (e.g. response_format); retry without them."""

    def __init__(self, features: Iterable[str], message: str):
        super().__init__(message)
        self.features = frozenset(features)
        self.message = message


def is_retryable_status(status: int) -> bool:
    """True for rate limits, request timeouts, conflicts and server errors."""
    return status in RETRYABLE_STATUS or status >= 500


def transport_failure(exc: BaseException, *, host: str, timeout_s: float) -> TransientError | None:
    """A TransientError for an httpx/httpx2 timeout or connection failure, else None."""
    for name in ("httpx2", "httpx"):
        module = sys.modules.get(name)
        if module is None:
            continue
        if isinstance(exc, module.TimeoutException):
            return timeout_failure(host, timeout_s)
        if isinstance(exc, module.TransportError):
            return connection_failure(host)
    return None


def timeout_failure(host: str, timeout_s: float) -> TransientError:
    """The TransientError for a request that got no answer in time."""
    return TransientError(
        f"no answer from {host} within {timeout_s:g} s",
        "raise request_timeout_s or check that the server is not overloaded",
    )


def connection_failure(host: str) -> TransientError:
    """The TransientError for a server that cannot be reached or dropped the connection."""
    return TransientError(f"cannot connect to {host}", "check the base URL and that the server is running")


def malformed_failure(host: str, exc: BaseException, secrets: Iterable[Secret]) -> TransientError:
    """The TransientError for a 200 reply that is not valid JSON or not a usable completion."""
    return TransientError(
        f"malformed reply from {host} ({one_line(exc, secrets, 80)})",
        "check that the base URL points at the provider's API, or try again later",
    )


def status_failure(status: int, host: str, message: str, retry_after: float | None) -> TransientError:
    """A TransientError for a retryable HTTP status, with advice that fits it."""
    if status == 429:
        advice = "the provider is rate-limiting this key; wait a minute or lower the concurrency"
    else:
        advice = "the server failed; try again later"
    detail = f" ({message})" if message else ""
    return TransientError(f"HTTP {status} from {host}{detail}", advice, retry_after=retry_after)


def one_line(text: object, secrets: Iterable[Secret] = (), limit: int = 240) -> str:
    """A server message made safe for an error: one line, secrets and key-like strings masked, short."""
    line = " ".join(str(text).split())
    for secret in secrets:
        if secret:
            line = line.replace(secret.reveal(), "***")
    line = _KEY_LIKE.sub("***", line)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a server asked us to wait (retry-after-ms, Retry-After seconds or HTTP date), if any."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    millis = _float_or_none(lowered.get("retry-after-ms"))
    if millis is not None:
        return max(millis / 1000.0, 0.0)
    value = lowered.get("retry-after")
    if not value:
        return None
    seconds = _float_or_none(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def retry_info_delay(error_body: object) -> float | None:
    """The wait a Google API error asks for in its RetryInfo detail ("retryDelay": "23s"), if any."""
    error = error_body.get("error", error_body) if isinstance(error_body, dict) else {}
    for detail in (error.get("details") if isinstance(error, dict) else None) or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            return _float_or_none(str(detail.get("retryDelay", "")).removesuffix("s"))
    return None


def _float_or_none(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is None or math.isfinite(value) else None


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """The wait before retry number `attempt + 1`: the server's Retry-After (capped), else backoff."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_CAP_S)
    base = min(BACKOFF_BASE_S * (2**attempt), BACKOFF_MAX_S)
    return base * (1.0 + 0.25 * random.random())  # jitter keeps parallel clients apart


def with_retries(attempt: Callable[[], T], *, retries: int, provider: str, sleep=time.sleep) -> T:
    """Call `attempt` until it succeeds or `retries` retries of transient failures are used up."""
    for number in range(retries + 1):
        try:
            return attempt()
        except TransientError as exc:
            last = exc
            if number == retries:
                break
            wait = backoff_delay(number, exc.retry_after)
            log.warning("%s: %s; retry %d of %d in %.2f s", provider, exc.summary, number + 1, retries, wait)
            sleep(wait)
    tries = f"{retries + 1} attempt{'s' if retries else ''}"
    raise BackendError(f"{provider} request failed after {tries}: {last.summary}; {last.advice}") from None


class FeatureSwitch:
    """Which optional features a backend instance has found its server rejecting (thread-safe)."""

    def __init__(self):
        self._off: set[str] = set()
        self._lock = threading.Lock()

    def current(self) -> frozenset[str]:
        """The features switched off so far."""
        with self._lock:
            return frozenset(self._off)

    def turn_off(self, features: Iterable[str]) -> None:
        """Leave these features out of every later request."""
        with self._lock:
            self._off.update(features)


def run_request(
    attempt: Callable[[frozenset[str]], T], *, switch: FeatureSwitch, retries: int, provider: str
) -> T:
    """Send one logical request: retries for transient failures, one resend per rejected feature.

    `attempt(off)` sends the request without the features in `off`. Features found unsupported
    are remembered in `switch` once a request without them has succeeded.
    """
    off = switch.current()
    while True:
        try:
            result = with_retries(functools.partial(attempt, off), retries=retries, provider=provider)
        except FeatureRejected as exc:
            new = exc.features - off
            if not new:
                raise BackendError(f"{provider} request rejected: {exc.message}") from None
            log.info(
                "%s: the server does not support %s; sending without it", provider, ", ".join(sorted(new))
            )
            off = off | new
            continue
        if off != switch.current():
            switch.turn_off(off)
        return result
