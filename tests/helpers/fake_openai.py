"""A fake OpenAI Chat Completions server: `POST .../chat/completions`, JSON or SSE as asked.

Each scripted `Completion` is rendered for the request that receives it: one chat.completion
body, or (when the request has `"stream": true`) a stream of chat.completion.chunk events ending
with `data: [DONE]`, with a usage chunk when `stream_options.include_usage` was asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tests.helpers.fake_http import FakeHTTPServer, RecordedRequest, Reply, json_reply, sse_reply
from tests.helpers.wire_schema import openai_request_error

VALID_VERDICT = {
    "reasoning": "The surface matches the reference; no scratch, dent or missing part is visible.",
    "anomalous": False,
    "confidence": 0.1,
    "defect_type": "none",
    "location": {"box": None, "where": "nowhere"},
    "rules_used": [],
}
VALID_VERDICT_TEXT = json.dumps(VALID_VERDICT)

# (token, logprob, {alternative token: logprob})
Logprob = tuple[str, float, dict[str, float]]


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None) -> dict:
    """The error body OpenAI sends with a 4xx/5xx."""
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


@dataclass
class Completion:
    """What the fake model answers."""

    deltas: list[str] = field(default_factory=list)  # the text, in the pieces a stream sends
    tool_calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (id, name, arguments)
    finish_reason: str | None = None  # default: "tool_calls" when there are tool calls, else "stop"
    logprobs: list[Logprob] | None = None
    refusal: str | None = None
    usage: tuple[int, int] = (11, 7)  # prompt, completion tokens
    event_delay: float = 0.0

    @property
    def finish(self) -> str:
        return self.finish_reason or ("tool_calls" if self.tool_calls else "stop")

    def render(self, request: RecordedRequest) -> Reply:
        """One JSON body, or an SSE stream when the request asked for streaming."""
        body = request.body or {}
        model = body.get("model", "fake-model")
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return sse_reply(self.chunks(model, usage), done_marker=True, event_delay=self.event_delay)
        return json_reply(self.as_json(model))

    def as_json(self, model: str) -> dict:
        message = {"role": "assistant", "content": "".join(self.deltas) or None, "refusal": self.refusal}
        if self.tool_calls:
            message["tool_calls"] = [_tool_call(i, c) for i, c in enumerate(self.tool_calls)]
        choice = {
            "index": 0,
            "message": message,
            "finish_reason": self.finish,
            "logprobs": _logprobs(self.logprobs) if self.logprobs is not None else None,
        }
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [choice],
            "usage": self._usage(),
        }

    def chunks(self, model: str, include_usage: bool) -> list[dict]:
        deltas = [{"role": "assistant", "content": ""}]
        deltas += [{"content": text} for text in self.deltas]
        if self.refusal:
            deltas.append({"refusal": self.refusal})
        for i, call in enumerate(self.tool_calls):
            deltas += _tool_call_deltas(i, call)
        events = [_chunk(model, delta) for delta in deltas]
        if self.logprobs is not None:  # attach all token logprobs to the first text chunk
            events[min(1, len(events) - 1)]["choices"][0]["logprobs"] = _logprobs(self.logprobs)
        events.append(_chunk(model, {}, finish=self.finish))
        if include_usage:
            events.append({**_chunk(model, {}), "choices": [], "usage": self._usage()})
        return events

    def _usage(self) -> dict:
        prompt, completion = self.usage
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _tool_call(index: int, call: tuple[str, str, dict]) -> dict:
    call_id, name, arguments = call
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def _tool_call_deltas(index: int, call: tuple[str, str, dict]) -> list[dict]:
    """A tool call split the way OpenAI streams it: id and name first, then argument pieces."""
    call_id, name, arguments = call
    text = json.dumps(arguments)
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)] or [""]
    first = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    rest = [{"index": index, "function": {"arguments": piece}} for piece in pieces]
    return [{"tool_calls": [d]} for d in [first, *rest]]


def _logprobs(tokens: list[Logprob]) -> dict:
    return {
        "content": [
            {
                "token": token,
                "logprob": logprob,
                "bytes": list(token.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top.items()
                ],
            }
            for token, logprob, top in tokens
        ]
    }


def _chunk(model: str, delta: dict, finish: str | None = None) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


class FakeOpenAIServer(FakeHTTPServer):
    """Speaks Chat Completions; by default answers every request with a valid verdict."""

    def __init__(self):
        super().__init__()
        self.rejected_fields: dict[str, str] = {}

    def serves(self, request: RecordedRequest) -> bool:
        return request.method == "POST" and request.path.endswith("/chat/completions")

    def default_reply(self, request: RecordedRequest) -> Reply:
        return Completion([VALID_VERDICT_TEXT]).render(request)

    def malformation(self, request: RecordedRequest) -> str | None:
        return openai_request_error(request.body)

    def malformed_reply(self, problem: str) -> Reply:
        return json_reply(error_body(f"Invalid request body: {problem}"), 400)

    def before_queue(self, request: RecordedRequest) -> Reply | None:
        for name, message in self.rejected_fields.items():
            if name in (request.body or {}):
                return json_reply(error_body(message, param=name), 400)
        return None

    def reject_field(self, name: str, message: str | None = None) -> None:
        """Answer 400 to every request carrying the top-level field `name`, like a server without it."""
        self.rejected_fields[name] = message or f"Unrecognized request argument supplied: {name}"

    def enqueue_completion(self, completion: Completion) -> None:
        self.enqueue(completion.render)

    def enqueue_text_reply(
        self,
        text: str,
        *,
        logprobs: list[Logprob] | None = None,
        finish_reason: str = "stop",
        usage: tuple[int, int] = (11, 7),
    ) -> None:
        """Queue a plain text answer (streamed in one piece when the request streams)."""
        self.enqueue_completion(
            Completion([text], finish_reason=finish_reason, logprobs=logprobs, usage=usage)
        )

    def enqueue_stream(self, deltas: list[str], *, event_delay: float = 0.0, **kwargs) -> None:
        """Queue an answer sent as these text deltas when streamed (joined when not)."""
        self.enqueue_completion(Completion(list(deltas), event_delay=event_delay, **kwargs))

    def enqueue_tool_call(
        self, name: str, arguments: dict, *, call_id: str = "call_1", text: str = ""
    ) -> None:
        self.enqueue_completion(Completion([text] if text else [], tool_calls=[(call_id, name, arguments)]))

    def enqueue_broken_stream(self, deltas: list[str]) -> None:
        """Queue a stream that sends these text deltas, then loses the connection."""

        def broken(request: RecordedRequest) -> Reply:
            reply = Completion(list(deltas)).render(request)
            reply.events = reply.events[: 1 + len(deltas)]  # the role chunk and the text, no finish
            reply.cut = True
            return reply

        self.enqueue(broken)

    def enqueue_refusal(self, text: str = "I'm sorry, I can't help with that.") -> None:
        self.enqueue_completion(Completion([], refusal=text))

    def enqueue_truncated(self, text: str = '{"reasoning": "The part shows') -> None:
        """Queue an answer cut off by the token limit (finish_reason "length")."""
        self.enqueue_completion(Completion([text], finish_reason="length"))
