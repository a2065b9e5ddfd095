"""Mapping between our provider-neutral messages and google-genai types (no network).

Requests: system text, contents (tool results as function responses in one user turn, their
images in the next), and the generation config. Replies: a `ModelReply` assembled from one
response or from stream chunks; a blocked prompt or a safety stop is a refusal.
"""

from __future__ import annotations

import json
import uuid

from google.genai import types

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

GENERATED_ID = "gemini-call-"  # prefix of ids we make up for calls Gemini sent without one
SKIP_SIGNATURE = b"skip_thought_signature_validator"  # Google's sentinel for calls without a signature
SAFETY_STOPS = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "RECITATION"}
FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
VERDICT_FUNCTION = "give_verdict"  # the structured verdict, offered as a function when tools are offered too


def build_config(
    request: ModelRequest, system: str, off: frozenset[str]
) -> tuple[types.GenerateContentConfig, set]:
    """The generation config without the features in `off`, and the optional features it uses.

    A structured verdict (request.json_schema) is asked for on every turn that may give it: by JSON mode
    without tools; with tools (Gemini 2.x refuses JSON mode beside function calling) as the function
    VERDICT_FUNCTION whose parameters are the schema, with function calling forced (mode ANY), so the
    model either calls a tool or gives the verdict through the schema, never in prose."""
    structured = bool(request.json_schema) and "json_mode" not in off
    json_mode = structured and not request.tools
    verdict_function = structured and bool(request.tools)
    logprobs = request.want_logprobs and "logprobs" not in off
    declarations = _declarations(request.tools)
    if verdict_function:
        declarations.append(_verdict_declaration(request.json_schema))
    config = types.GenerateContentConfig(
        system_instruction=system or None,
        temperature=request.temperature,
        max_output_tokens=request.max_tokens,
        tools=[types.Tool(function_declarations=declarations)] if declarations else None,
        tool_config=_forced_function_call() if verdict_function else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        response_mime_type="application/json" if json_mode else None,
        response_json_schema=request.json_schema if json_mode else None,
        response_logprobs=True if logprobs else None,
        logprobs=5 if logprobs else None,
    )
    used = (("json_mode", json_mode or verdict_function), ("logprobs", logprobs))
    return config, {name for name, on in used if on}


def _verdict_declaration(schema: dict) -> types.FunctionDeclaration:
    return types.FunctionDeclaration(
        name=VERDICT_FUNCTION,
        description="Give the final verdict of the inspection (call it once you need no other tool).",
        parameters_json_schema=schema,
    )


def _forced_function_call() -> types.ToolConfig:
    return types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY))


def _declarations(tools: list[dict]) -> list[types.FunctionDeclaration]:
    empty = {"type": "object", "properties": {}}
    return [
        types.FunctionDeclaration(
            name=t["name"],
            description=t.get("description", ""),
            parameters_json_schema=t.get("parameters") or empty,
        )
        for t in tools
    ]


def _user_parts(parts: list[str | EncodedImage]) -> list[types.Part]:
    out: list[types.Part] = []
    for part in parts:
        if isinstance(part, EncodedImage):
            out += [
                types.Part.from_text(text=part.caption),
                types.Part.from_bytes(data=part.data, mime_type=part.mime),
            ]
        elif part:
            out.append(types.Part.from_text(text=part))
    return out


def _model_parts(message: Message, signatures, needs_signature: bool) -> list[types.Part]:
    parts = [types.Part.from_text(text=message.text)] if message.text else []
    for i, call in enumerate(message.tool_calls):
        signature = signatures.get(call.id) or (SKIP_SIGNATURE if needs_signature and i == 0 else None)
        real_id = None if call.id.startswith(GENERATED_ID) else call.id
        parts.append(
            types.Part(
                function_call=types.FunctionCall(name=call.name, args=call.arguments, id=real_id),
                thought_signature=signature,
            )
        )
    return parts


def _function_response(message: Message) -> types.Part:
    text = tool_result_text(message)
    response = {"error": text} if text.startswith("Error:") else {"output": text}
    call_id = message.tool_call_id or ""
    real_id = None if call_id.startswith(GENERATED_ID) else call_id or None
    return types.Part(
        function_response=types.FunctionResponse(
            name=message.tool_name or "tool", response=response, id=real_id
        )
    )


def to_contents(
    messages: list[Message], signatures, needs_signature: bool
) -> tuple[str, list[types.Content]]:
    """System text and Gemini contents; tool results become one user turn, their images the next."""
    system = "\n\n".join(m.text for m in messages if m.role == "system" and m.text)
    contents: list[types.Content] = []
    responses: list[types.Part] = []
    images: list[str | EncodedImage] = []

    def flush() -> None:
        if responses:
            contents.append(types.Content(role="user", parts=list(responses)))
        if images:
            contents.append(types.Content(role="user", parts=_user_parts(images)))
        responses.clear()
        images.clear()

    for message in messages:
        if message.role == "tool":
            responses.append(_function_response(message))
            if message.images:
                images.extend([tool_images_intro(message), *message.images])
            continue
        flush()
        if message.role == "user" and message.parts:
            contents.append(types.Content(role="user", parts=_user_parts(message.parts)))
        elif message.role == "assistant" and (message.text or message.tool_calls):
            contents.append(
                types.Content(role="model", parts=_model_parts(message, signatures, needs_signature))
            )
    flush()
    return system, contents


class ReplyAssembler:
    """Builds a ModelReply from one response or from stream chunks, passing text to `on_text`."""

    def __init__(self, on_text: TextSink | None):
        self.on_text = on_text
        self.text: list[str] = []
        self.calls: list[ToolCall] = []
        self.signatures: dict[str, bytes] = {}
        self.logprobs: list[TokenLogprob] = []
        self.finish: str | None = None
        self.blocked: str | None = None
        self.usage: dict = {}
        self.model = ""
        self.emitted = False
        self.verdict: str | None = None  # the arguments of a VERDICT_FUNCTION call

    def feed(self, response: types.GenerateContentResponse) -> None:
        """Take one response or stream chunk: text to on_text, calls, finish reason, usage, logprobs."""
        self.model = response.model_version or self.model
        if response.usage_metadata:
            usage = response.usage_metadata
            self.usage = {
                "input_tokens": usage.prompt_token_count or 0,
                "output_tokens": usage.candidates_token_count or 0,
            }
        if response.prompt_feedback and response.prompt_feedback.block_reason:
            self.blocked = _name(response.prompt_feedback.block_reason)
        for candidate in (response.candidates or [])[:1]:
            for part in (candidate.content.parts if candidate.content else None) or []:
                self._feed_part(part)
            self.finish = _name(candidate.finish_reason) if candidate.finish_reason else self.finish
            self.logprobs += _logprobs(candidate.logprobs_result)

    def _feed_part(self, part: types.Part) -> None:
        if part.function_call and part.function_call.name == VERDICT_FUNCTION:
            self.verdict = json.dumps(dict(part.function_call.args or {}))  # the answer, read as the JSON it is
        elif part.function_call:
            call = part.function_call
            tool_call = ToolCall(
                call.id or f"{GENERATED_ID}{uuid.uuid4().hex[:12]}", call.name or "", dict(call.args or {})
            )
            self.calls.append(tool_call)
            if part.thought_signature:
                self.signatures[tool_call.id] = part.thought_signature
        elif part.text and not part.thought:
            self.text.append(part.text)
            self.emitted = True
            if self.on_text is not None:
                self.on_text(part.text)

    def reply(self) -> ModelReply:
        """The assembled reply; a blocked prompt or a safety stop is a refusal; a verdict call is the answer."""
        if self.verdict is not None:
            return ModelReply(text=self.verdict, model=self.model, usage=self.usage, logprobs=self.logprobs or None)
        text = "".join(self.text)
        if self.blocked and not (text or self.calls):
            return ModelReply(
                text=f"Gemini blocked the request ({self.blocked}).",
                finish_reason="content_filter",
                model=self.model,
                usage=self.usage,
                refused=True,
            )
        if self.finish is None and not (text or self.calls):
            raise MalformedReply("the reply has no candidates")
        refused = self.finish in SAFETY_STOPS
        if refused:
            finish = "content_filter"
            text = text or f"Gemini stopped the answer ({self.finish})."
        else:
            finish = (
                "tool_calls" if self.calls else FINISH.get(self.finish or "STOP", (self.finish or "").lower())
            )
        return ModelReply(
            text=text,
            tool_calls=self.calls,
            logprobs=self.logprobs or None,
            finish_reason=finish,
            model=self.model,
            usage=self.usage,
            refused=refused,
        )


def _logprobs(result: types.LogprobsResult | None) -> list[TokenLogprob]:
    if result is None or not result.chosen_candidates:
        return []
    tops = result.top_candidates or []
    out = []
    for i, chosen in enumerate(result.chosen_candidates):
        alternatives = tops[i].candidates or [] if i < len(tops) else []
        out.append(
            TokenLogprob(
                chosen.token or "",
                chosen.log_probability or 0.0,
                {c.token or "": c.log_probability or 0.0 for c in alternatives},
            )
        )
    return out


def _name(value) -> str:
    return str(getattr(value, "value", value))
