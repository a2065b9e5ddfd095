"""Mapping between our provider-neutral messages and the Chat Completions wire format.

Pure functions, no network: request messages and options out, `ModelReply` in (from one
completion, or assembled from a stream of chunks).
"""

from __future__ import annotations

import json
import logging

from assistant.backends.base import (
    EncodedImage,
    Message,
    ModelReply,
    ModelRequest,
    TextSink,
    TokenLogprob,
    ToolCall,
    tool_images_intro,
    tool_result_text,
)
from assistant.backends.retry import MalformedReply

log = logging.getLogger(__name__)


def image_parts(image: EncodedImage) -> list[dict]:
    """An image as Chat Completions content parts: its caption, then the data URL."""
    return [
        {"type": "text", "text": image.caption},
        {"type": "image_url", "image_url": {"url": image.data_url}},
    ]


def user_content(parts: list[str | EncodedImage]) -> str | list[dict]:
    """A user message's parts in order; plain text stays a string (what every server accepts)."""
    if not any(isinstance(p, EncodedImage) for p in parts):
        return "\n".join(parts)
    content: list[dict] = []
    for part in parts:
        content += image_parts(part) if isinstance(part, EncodedImage) else [{"type": "text", "text": part}]
    return content


def _assistant(message: Message) -> dict:
    out: dict = {"role": "assistant", "content": message.text or None}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in message.tool_calls
        ]
    return out


def _tool(message: Message) -> dict:
    return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": tool_result_text(message)}


def _moved_images(tool_messages: list[Message]) -> dict:
    parts: list[str | EncodedImage] = []
    for message in tool_messages:
        parts += [tool_images_intro(message), *message.images]
    return {"role": "user", "content": user_content(parts)}


def to_openai_messages(messages: list[Message]) -> list[dict]:
    """Chat Completions messages; images found in tool messages move to a user message after them."""
    out: list[dict] = []
    with_images: list[Message] = []
    for message in messages:
        if message.role != "tool" and with_images:
            out.append(_moved_images(with_images))
            with_images = []
        if message.role == "assistant":
            out.append(_assistant(message))
        elif message.role == "tool":
            out.append(_tool(message))
            with_images += [message] if message.images else []
        elif message.role == "user":
            out.append({"role": "user", "content": user_content(message.parts)})
        else:
            out.append({"role": message.role, "content": message.text})
    if with_images:
        out.append(_moved_images(with_images))
    return out


def to_openai_tools(tools: list[dict]) -> list[dict]:
    """Our tool specs ({name, description, parameters}) as Chat Completions function tools."""
    return [
        {
            "type": "function",
            "function": {
                "name": t["name"],
                "description": t.get("description", ""),
                "parameters": t.get("parameters") or {"type": "object", "properties": {}},
            },
        }
        for t in tools
    ]


def build_options(request: ModelRequest, off: frozenset[str], streaming: bool) -> dict:
    """Keyword arguments for `chat.completions.create`, without the features in `off`."""
    options: dict = {}
    limit = "max_completion_tokens" if "max_tokens" in off else "max_tokens"
    options[limit] = request.max_tokens
    if "temperature" not in off:
        options["temperature"] = request.temperature
    if request.tools and "tools" not in off:
        options["tools"] = to_openai_tools(request.tools)
    if request.json_schema and "response_format" not in off:
        options["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": request.json_schema, "strict": True},
        }
    if request.want_logprobs and "logprobs" not in off:
        options.update(logprobs=True, top_logprobs=5)
    if streaming and "stream" not in off:
        options["stream"] = True
        if "stream_usage" not in off:
            options["stream_options"] = {"include_usage": True}
    return options


def parse_arguments(text: str | None, name: str) -> dict:
    """Tool-call arguments as a dict; unreadable JSON is passed on so the tool can report it."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        log.warning("tool call %s has arguments that are not JSON", name)
        return {"_unparsed_arguments": text}
    return value if isinstance(value, dict) else {"_unparsed_arguments": text}


def parse_logprobs(choice_logprobs) -> list[TokenLogprob] | None:
    """A choice's token logprobs with their top alternatives, or None when the server sent none."""
    content = getattr(choice_logprobs, "content", None) if choice_logprobs is not None else None
    if not content:
        return None
    return [
        TokenLogprob(t.token, t.logprob, {top.token: top.logprob for top in (t.top_logprobs or [])})
        for t in content
    ]


def usage_of(usage) -> dict:
    """Token usage in our neutral keys (input_tokens, output_tokens)."""
    if usage is None:
        return {}
    return {"input_tokens": usage.prompt_tokens or 0, "output_tokens": usage.completion_tokens or 0}


def reply_from_completion(completion) -> ModelReply:
    """A ModelReply from one (non-streamed) chat.completion."""
    if not getattr(completion, "choices", None):
        raise MalformedReply("the reply has no choices")
    choice = completion.choices[0]
    message = choice.message
    if message is None:
        raise MalformedReply("the reply's choice has no message")
    refusal = getattr(message, "refusal", None)
    calls = [
        ToolCall(c.id or f"call_{i}", c.function.name, parse_arguments(c.function.arguments, c.function.name))
        for i, c in enumerate(message.tool_calls or [])
    ]
    finish = choice.finish_reason or "stop"
    return ModelReply(
        text=message.content or refusal or "",
        tool_calls=calls,
        logprobs=parse_logprobs(choice.logprobs),
        finish_reason=finish,
        model=completion.model or "",
        usage=usage_of(completion.usage),
        refused=bool(refusal) or finish == "content_filter",
    )


class StreamAssembler:
    """Builds a ModelReply from chat.completion.chunk events, passing text deltas to `on_text`."""

    def __init__(self, on_text: TextSink):
        self.on_text = on_text
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, dict] = {}
        self.logprobs: list[TokenLogprob] = []
        self.finish, self.model, self.usage = "stop", "", {}
        self.emitted = False  # whether any text reached on_text (a retry would repeat it)

    def feed(self, chunk) -> None:
        """Take one chunk: text to on_text, tool-call pieces, logprobs, finish reason, usage."""
        self.model = chunk.model or self.model
        if chunk.usage:
            self.usage = usage_of(chunk.usage)
        for choice in chunk.choices or []:
            if choice.index == 0:
                self._feed_choice(choice)

    def _feed_choice(self, choice) -> None:
        delta = choice.delta
        if delta.content:
            self.text.append(delta.content)
            self.emitted = True
            self.on_text(delta.content)
        if getattr(delta, "refusal", None):
            self.refusal.append(delta.refusal)
        for call in delta.tool_calls or []:
            slot = self.calls.setdefault(call.index, {"id": None, "name": "", "arguments": []})
            slot["id"] = call.id or slot["id"]
            if call.function is not None:
                slot["name"] = call.function.name or slot["name"]
                slot["arguments"].append(call.function.arguments or "")
        self.logprobs += parse_logprobs(choice.logprobs) or []
        self.finish = choice.finish_reason or self.finish

    def reply(self) -> ModelReply:
        """The reply assembled from all chunks fed so far."""
        calls = [
            ToolCall(s["id"] or f"call_{i}", s["name"], parse_arguments("".join(s["arguments"]), s["name"]))
            for i, s in sorted(self.calls.items())
        ]
        refusal = "".join(self.refusal)
        return ModelReply(
            text="".join(self.text) or refusal,
            tool_calls=calls,
            logprobs=self.logprobs or None,
            finish_reason=self.finish,
            model=self.model,
            usage=self.usage,
            refused=bool(refusal) or self.finish == "content_filter",
        )
