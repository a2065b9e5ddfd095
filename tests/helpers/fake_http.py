"""A real HTTP server on 127.0.0.1 for backend tests: scripted replies, every request recorded.

Protocol servers (fake_openai, fake_gemini) subclass `FakeHTTPServer`: they say which paths they
serve and how a scripted answer is rendered for a request (one JSON body, or an SSE stream when
the request asked for one). Each test queues answers; when the queue is empty the server gives
its default answer, optionally after a delay, so it can also stand in for a slow model under
concurrent load (one thread per connection): `server.set_default(None, delay=1.0)` answers every
request after a second, many at a time; `max_in_flight` tells how many were answered at once.
Credential headers (Authorization, x-goog-api-key) are recorded as "<redacted>" and checked with
`RecordedRequest.credential_is(header, value)`.

Every request to a served path is checked against the protocol's wire schema (`malformation`): a
malformed one gets a 400 in the provider's format and is remembered, and leaving the server's
`with` block (or `assert_well_formed()`) then fails the test that sent it.
"""

from __future__ import annotations

import hashlib
import json
import socketserver
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

CREDENTIAL_HEADERS = ("authorization", "x-goog-api-key", "api-key")
REDACTED = "<redacted>"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class RecordedRequest:
    """One request as the server saw it; credential headers are kept only as a digest."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; credentials replaced by "<redacted>"
    body: Any  # parsed JSON, or None when the body was empty or not JSON
    raw: bytes = field(repr=False)
    _credentials: dict[str, str] = field(default_factory=dict, repr=False)

    def credential_is(self, header: str, value: str) -> bool:
        """True when the credential header carried exactly `value`."""
        return self._credentials.get(header.lower()) == _digest(value)

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive name); credentials read "<redacted>"."""
        return self.headers.get(name.lower())


@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0  # seconds before answering
    events: list[bytes] | None = None  # when set: an SSE stream, one chunk per event
    event_delay: float = 0.0
    drop: bool = False  # close the connection without answering
    cut: bool = False  # stream: close the connection after the events, without ending the body


Script = Reply | Callable[[RecordedRequest], Reply]


def json_reply(body: Any, status: int = 200, headers: dict | None = None, delay: float = 0.0) -> Reply:
    """A Reply whose body is `body` as JSON."""
    return Reply(status, json.dumps(body).encode(), dict(headers or {}), delay=delay)


def sse_reply(events: list[Any], *, done_marker: bool, event_delay: float = 0.0) -> Reply:
    """An SSE Reply: each event (a dict is sent as JSON) as `data: ...` plus a blank line."""
    chunks = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events]
    if done_marker:
        chunks.append(b"data: [DONE]\n\n")
    return Reply(200, content_type="text/event-stream", events=chunks, event_delay=event_delay)


class FakeHTTPServer:
    """Base of the fake model servers: queue, default answer, request log, lifecycle."""

    def __init__(self):
        self._queue: deque[Script] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._default: Script | None = None
        self._default_delay = 0.0
        self._in_flight = 0
        self.max_in_flight = 0  # the most requests answered at the same time
        self.malformed: list[str] = []  # requests that broke the wire schema, with the reason
        self._httpd: _Server | None = None

    # ---- protocol hooks -------------------------------------------------------------------
    def serves(self, request: RecordedRequest) -> bool:
        """Whether this path belongs to the protocol; others get 404."""
        raise NotImplementedError

    def default_reply(self, request: RecordedRequest) -> Reply:
        """The answer when nothing is queued."""
        raise NotImplementedError

    def before_queue(self, request: RecordedRequest) -> Reply | None:
        """A fixed answer that takes precedence over the queue (e.g. a rejected feature)."""
        return None

    def malformation(self, request: RecordedRequest) -> str | None:
        """Why a request breaks the protocol's wire schema (None: well formed)."""
        return None

    def malformed_reply(self, problem: str) -> Reply:
        """The provider's answer to a malformed request."""
        return json_reply({"error": {"message": problem}}, 400)

    # ---- scripting ------------------------------------------------------------------------
    def enqueue(self, item: Script) -> None:
        """Queue a Reply or a function of the request that returns one."""
        with self._lock:
            self._queue.append(item)

    def enqueue_json(self, body: Any, status: int = 200, headers: dict | None = None) -> None:
        """Queue a JSON answer with this status and headers."""
        self.enqueue(json_reply(body, status, headers))

    def enqueue_error(self, status: int, body: Any = None, headers: dict | None = None) -> None:
        """Queue an HTTP error with a JSON body (or a plain text body when `body` is a str)."""
        if isinstance(body, str):
            self.enqueue(Reply(status, body.encode(), dict(headers or {}), content_type="text/plain"))
        else:
            self.enqueue_json(
                body if body is not None else {"error": {"message": "scripted error"}}, status, headers
            )

    def enqueue_malformed(self, text: str = '{"choices": [ {"message": ', status: int = 200) -> None:
        """Queue a body that claims to be JSON but is not."""
        self.enqueue(Reply(status, text.encode()))

    def enqueue_delay(self, seconds: float, then: Script | None = None) -> None:
        """Queue an answer given only after `seconds` (the default answer unless `then` is given)."""

        def delayed(request: RecordedRequest) -> Reply:
            reply = self._render(then, request) if then is not None else self.default_reply(request)
            reply.delay = seconds
            return reply

        self.enqueue(delayed)

    def enqueue_disconnect(self) -> None:
        """Queue a dropped connection: the server closes it without answering."""
        self.enqueue(Reply(drop=True))

    def set_default(self, item: Script | None, delay: float = 0.0) -> None:
        """Change the answer given when the queue is empty (None: the protocol's default)."""
        self._default, self._default_delay = item, delay

    # ---- inspection -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    @property
    def pending(self) -> int:
        """Scripted answers not yet used."""
        with self._lock:
            return len(self._queue)

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeHTTPServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # cuts scripted delays short
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(self, exc_type, *exc) -> None:
        self.stop()
        if exc_type is None:
            self.assert_well_formed()

    def assert_well_formed(self) -> None:
        """Fail when any request broke the wire schema (call take_malformed() first to expect some)."""
        if self.malformed:
            raise AssertionError("the fake server received malformed request(s):\n" + "\n".join(self.malformed))

    def take_malformed(self) -> list[str]:
        """The malformed requests so far, forgotten (for a test that sends them on purpose)."""
        with self._lock:
            found, self.malformed = self.malformed, []
        return found

    # ---- serving (called from the handler threads) ----------------------------------------
    def _render(self, item: Script, request: RecordedRequest) -> Reply:
        return item(request) if callable(item) else item

    def _choose(self, request: RecordedRequest) -> Reply:
        if not self.serves(request):
            return json_reply({"error": {"message": f"no route for {request.method} {request.path}"}}, 404)
        problem = self.malformation(request)
        if problem is not None:
            with self._lock:
                self.malformed.append(f"{request.method} {request.path}: {problem}")
            return self.malformed_reply(problem)
        fixed = self.before_queue(request)
        if fixed is not None:
            return fixed
        with self._lock:
            item = self._queue.popleft() if self._queue else None
        if item is not None:
            return self._render(item, request)
        reply = self._render(self._default, request) if self._default else self.default_reply(request)
        reply.delay = max(reply.delay, self._default_delay)
        return reply

    def _serve(self, handler: _Handler) -> None:
        request = _record(handler)
        with self._lock:
            self._requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            reply = self._choose(request)
            if reply.delay and self._stopping.wait(reply.delay):
                reply = Reply(drop=True)
            _write(handler, reply, self._stopping)
        finally:
            with self._lock:
                self._in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    owner: FakeHTTPServer

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # skips the reverse DNS lookup of HTTPServer
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self._serve()

    def do_GET(self):
        self._serve()

    def _serve(self):
        try:
            self.server.owner._serve(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout): nothing to say

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        pass


def _record(handler: _Handler) -> RecordedRequest:
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    parts = urlsplit(handler.path)
    headers, credentials = {}, {}
    for name, value in handler.headers.items():
        name = name.lower()
        if name in CREDENTIAL_HEADERS:
            credentials[name] = _digest(value.removeprefix("Bearer "))
            value = REDACTED
        headers[name] = value
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return RecordedRequest(
        handler.command, parts.path, dict(parse_qsl(parts.query)), headers, body, raw, credentials
    )


def _write(handler: _Handler, reply: Reply, stopping: threading.Event) -> None:
    if reply.drop:
        handler.close_connection = True
        return
    handler.send_response(reply.status)
    handler.send_header("Content-Type", reply.content_type)
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    if reply.events is None:
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        handler.wfile.write(reply.body)
        return
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for event in reply.events:
        handler.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        handler.wfile.flush()
        if reply.event_delay and stopping.wait(reply.event_delay):
            break
    if reply.cut:
        handler.close_connection = True
        return
    handler.wfile.write(b"0\r\n\r\n")
