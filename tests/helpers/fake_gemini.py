"""A fake Gemini API server: `POST /v1beta/models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`, answering with the REST JSON shapes the google-genai SDK reads.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from tests.helpers.fake_http import FakeHTTPServer, RecordedRequest, Reply, json_reply, sse_reply
from tests.helpers.fake_openai import VALID_VERDICT_TEXT
from tests.helpers.wire_schema import gemini_request_error

ROUTE = re.compile(
    r"^/(?P<version>v1beta|v1)/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)

# (name, args, call id or None, thought signature bytes or None)
FunctionCall = tuple[str, dict, str | None, bytes | None]


def error_body(
    code: int, message: str, status: str = "INVALID_ARGUMENT", retry_delay: str | None = None
) -> dict:
    """The error body Google APIs send (google.rpc.Status), with RetryInfo when `retry_delay` is set."""
    error: dict = {"code": code, "message": message, "status": status}
    if retry_delay:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
    return {"error": error}


@dataclass
class GeminiAnswer:
    """What the fake Gemini model answers."""

    deltas: list[str] = field(default_factory=list)  # text, in the pieces a stream sends
    function_calls: list[FunctionCall] = field(default_factory=list)
    finish_reason: str | None = "STOP"  # None: no candidate at all (see block_reason)
    block_reason: str | None = None  # promptFeedback.blockReason: the prompt itself was blocked
    logprobs: list[tuple[str, float, dict[str, float]]] | None = None
    usage: tuple[int, int] = (13, 9)  # prompt, candidates tokens
    event_delay: float = 0.0

    def render(self, request: RecordedRequest) -> Reply:
        """One JSON body, or an SSE stream for streamGenerateContent."""
        model = ROUTE.match(request.path)["model"]
        if request.path.endswith(":streamGenerateContent"):
            return sse_reply(self.chunks(model), done_marker=False, event_delay=self.event_delay)
        parts = [{"text": "".join(self.deltas)}] if "".join(self.deltas) else []
        return json_reply(self.response(model, parts + self._call_parts(), final=True))

    def chunks(self, model: str) -> list[dict]:
        pieces = [[{"text": text}] for text in self.deltas if text]
        if self.function_calls:
            pieces.append(self._call_parts())
        pieces = pieces or [[]]
        return [self.response(model, parts, final=i == len(pieces) - 1) for i, parts in enumerate(pieces)]

    def response(self, model: str, parts: list[dict], *, final: bool) -> dict:
        body: dict = {"modelVersion": model, "responseId": "fake-response"}
        if self.block_reason:
            body["promptFeedback"] = {"blockReason": self.block_reason}
        if self.finish_reason is not None:
            body["candidates"] = [self._candidate(parts, final)]
        if final:
            prompt, output = self.usage
            body["usageMetadata"] = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": output,
                "totalTokenCount": prompt + output,
            }
        return body

    def _candidate(self, parts: list[dict], final: bool) -> dict:
        candidate: dict = {"index": 0}
        if parts:
            candidate["content"] = {"role": "model", "parts": parts}
        if final:
            candidate["finishReason"] = self.finish_reason
            if self.logprobs is not None:
                candidate["logprobsResult"] = _logprobs(self.logprobs)
        return candidate

    def _call_parts(self) -> list[dict]:
        parts = []
        for name, args, call_id, signature in self.function_calls:
            call = {"name": name, "args": args} | ({"id": call_id} if call_id else {})
            part: dict = {"functionCall": call}
            if signature:
                part["thoughtSignature"] = base64.b64encode(signature).decode()
            parts.append(part)
        return parts


def _logprobs(tokens) -> dict:
    return {
        "chosenCandidates": [{"token": t, "logProbability": lp} for t, lp, _ in tokens],
        "topCandidates": [
            {"candidates": [{"token": k, "logProbability": v} for k, v in top.items()]}
            for _, _, top in tokens
        ],
    }


class FakeGeminiServer(FakeHTTPServer):
    """Speaks the Gemini generateContent API; by default answers with a valid verdict."""

    def __init__(self):
        super().__init__()
        self.reject_json_with_tools = (
            True  # like Gemini 2.5: JSON mode and function calling exclude each other
        )

    def serves(self, request: RecordedRequest) -> bool:
        return request.method == "POST" and ROUTE.match(request.path) is not None

    def default_reply(self, request: RecordedRequest) -> Reply:
        return GeminiAnswer([VALID_VERDICT_TEXT]).render(request)

    def malformation(self, request: RecordedRequest) -> str | None:
        return gemini_request_error(request.raw)

    def malformed_reply(self, problem: str) -> Reply:
        return json_reply(error_body(400, f"Invalid JSON payload received. {problem}"), 400)

    def before_queue(self, request: RecordedRequest) -> Reply | None:
        body = request.body or {}
        config = body.get("generationConfig") or {}
        if (
            self.reject_json_with_tools
            and body.get("tools")
            and config.get("responseMimeType") == "application/json"
        ):
            message = "Function calling with a response mime type: 'application/json' is unsupported"
            return json_reply(error_body(400, message), 400)
        return None

    def enqueue_answer(self, answer: GeminiAnswer) -> None:
        self.enqueue(answer.render)

    def enqueue_text_reply(
        self, text: str, *, logprobs=None, finish_reason: str = "STOP", usage: tuple[int, int] = (13, 9)
    ) -> None:
        """Queue a text answer (one piece when streamed)."""
        self.enqueue_answer(GeminiAnswer([text], finish_reason=finish_reason, logprobs=logprobs, usage=usage))

    def enqueue_stream(self, deltas: list[str], *, event_delay: float = 0.0) -> None:
        """Queue an answer sent as these text pieces when streamed (joined when not)."""
        self.enqueue_answer(GeminiAnswer(list(deltas), event_delay=event_delay))

    def enqueue_tool_call(
        self, name: str, args: dict, *, call_id: str | None = None, thought_signature: bytes | None = None
    ) -> None:
        """Queue a functionCall answer."""
        self.enqueue_answer(GeminiAnswer([], function_calls=[(name, args, call_id, thought_signature)]))

    def enqueue_broken_stream(self, deltas: list[str]) -> None:
        """Queue a stream that sends these text pieces, then loses the connection."""

        def broken(request: RecordedRequest) -> Reply:
            reply = GeminiAnswer(list(deltas) + ["never sent"]).render(request)
            reply.events = reply.events[: len(deltas)]  # the text, without the final chunk
            reply.cut = True
            return reply

        self.enqueue(broken)

    def enqueue_blocked(self, reason: str = "SAFETY") -> None:
        """Queue an answer whose prompt was blocked (promptFeedback, no candidates)."""
        self.enqueue_answer(GeminiAnswer([], finish_reason=None, block_reason=reason))

    def enqueue_safety_stop(self) -> None:
        """Queue a candidate stopped by the safety filter (finishReason SAFETY, no content)."""
        self.enqueue_answer(GeminiAnswer([], finish_reason="SAFETY"))

    def enqueue_truncated(self, text: str = '{"reasoning": "The part shows') -> None:
        """Queue an answer cut off by the token limit (finishReason MAX_TOKENS)."""
        self.enqueue_answer(GeminiAnswer([text], finish_reason="MAX_TOKENS"))

    def enqueue_google_error(
        self,
        code: int,
        message: str,
        status: str,
        *,
        retry_delay: str | None = None,
        headers: dict | None = None,
    ) -> None:
        """Queue an error in Google's format (e.g. 429 RESOURCE_EXHAUSTED with RetryInfo)."""
        self.enqueue_json(error_body(code, message, status, retry_delay), code, headers)
