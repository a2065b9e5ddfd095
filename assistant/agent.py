"""The agent: build the request, send it, run the tools the model asks for, send their results,
repeat; for an analysis, read the verdict from the answer (asking once more when it is unreadable).

`run` and `ask_for_verdict` are generators of Events (tool step started / finished with its
duration, streamed text) whose return value is the result, so callers write
`reply = yield from run(...)`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from assistant import prompts
from assistant.backends.base import Backend, EncodedImage, Message, ModelReply, ModelRequest
from assistant.events import Event, new_step_id
from assistant.verdict import read_answer
from tools.agent import evidence_tools, knowledge_tools, render_tools  # noqa: F401 - importing them registers the tools
from tools.agent.fence import for_people
from tools.agent.registry import REGISTRY, ToolResult, call_tool
from tools.errors import BackendError
from tools.vocabulary import display_class

_DONE = object()


def request_for(backend: Backend, messages: list[Message], turn, **options) -> ModelRequest:
    """A request with the tools offered for this turn (when the backend takes tools) and the structured turn."""
    tools = [t.spec() for t in offered_tools(turn)] if backend.supports_tools else []
    return ModelRequest(messages=messages, tools=tools, context=turn, **options)


def offered_tools(turn) -> list:
    """The registered tools, without those whose results would hand an analysis a prompt part its strategy
    leaves out (e.g. no rule lookup under `naive`), so that the ablation's arms stay what they name."""
    strategy = turn.strategy if turn is not None and turn.mode == "analysis" else None
    return [t for t in REGISTRY.values() if strategy is None or t.reveals is None or strategy.uses(t.reveals)]


def ask_for_verdict(backend: Backend, request: ModelRequest, ctx, *, max_steps: int = 6) -> Iterator[Event]:
    """Run the request and read its verdict JSON; one repair request quotes the parse error.

    Returns (reply, answer or None, parse error or None); the request's messages hold the exchange.
    """
    reply = yield from run(backend, request, ctx, max_steps=max_steps)
    answer, error = read_answer(reply.text)
    if error is not None:
        request.messages += [Message("assistant", [reply.text]), Message("user", [prompts.REPAIR.format(error=error)])]
        first_usage = reply.usage
        reply = yield from run(backend, request, ctx, max_steps=2)
        reply.usage = {k: first_usage.get(k, 0) + reply.usage.get(k, 0) for k in {*first_usage, *reply.usage}}
        answer, error = read_answer(reply.text)
    return reply, answer, error


def run(backend: Backend, request: ModelRequest, ctx, *, max_steps: int = 6, stream: bool = False,
        image_long_side: int = 768) -> Iterator[Event]:
    """Run the model until it answers without tool calls or the step limit is reached."""
    reply = ModelReply()
    usage: dict = {}
    for _ in range(max_steps):
        reply = yield from _complete(backend, request, stream)
        for key, value in (reply.usage or {}).items():
            usage[key] = usage.get(key, 0) + (value or 0)
        reply.usage = dict(usage)  # the whole loop's token use, not just the last call's
        if not reply.tool_calls:
            return reply
        request.messages.append(Message("assistant", parts=[reply.text] if reply.text else [], tool_calls=reply.tool_calls))
        images = []
        for call in reply.tool_calls:
            images += yield from _run_tool(call, ctx, request, image_long_side)
        if images:  # tool messages carry text only; their pictures follow in a user message
            request.messages.append(Message("user", parts=["Pictures returned by the tools above:", *images]))
    yield Event("notice", text=f"Stopped after {max_steps} model steps (step limit); the answer may be incomplete.")
    return reply


def _run_tool(call, ctx, request: ModelRequest, long_side: int) -> Iterator[Event]:
    step = new_step_id()
    title = f"🛠️ {call.name}"
    yield Event("step", title=title, text=_args_text(call.arguments), status="pending", step_id=step)
    withheld = call.name in REGISTRY and request.tools and call.name not in {t["name"] for t in request.tools}
    result = (ToolResult(f"Error: the tool {call.name} is not offered in this turn", error=True) if withheld
              else call_tool(call.name, call.arguments, ctx))
    yield Event("step", title=title, text=for_people(result.text)[:2000], status="error" if result.error else "done",
                step_id=step, duration_s=result.duration_s)
    if result.images:  # shown beside the steps, not folded inside one: they are what the answer points at
        yield Event("notice", title=result.data.get("caption") or f"{call.name}: picture", images=list(result.images))
    request.messages.append(Message("tool", parts=[result.text], tool_call_id=call.id, tool_name=call.name))
    return [EncodedImage.from_pil(img, f"{call.name} result {i + 1}", long_side) for i, img in enumerate(result.images)]


def _args_text(arguments: dict) -> str:
    """The arguments as a person reads them (a class in its one display form)."""
    shown = {k: display_class(v) if k == "class_name" and v else v for k, v in arguments.items()}
    return ", ".join(f"{k}={str(v)[:80]}" for k, v in shown.items())


def _complete(backend: Backend, request: ModelRequest, stream: bool) -> Iterator[Event]:
    if not (stream and backend.supports_streaming):
        return backend.complete(request)
    return (yield from _complete_streaming(backend, request))


def _complete_streaming(backend: Backend, request: ModelRequest) -> Iterator[Event]:
    """Run a blocking streaming call in a thread and pass its text deltas on as events."""
    deltas: queue.Queue = queue.Queue()
    outcome: dict = {}

    def work():
        try:
            outcome["reply"] = backend.complete(request, on_text=deltas.put)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            deltas.put(_DONE)

    threading.Thread(target=work, daemon=True, name="model-call").start()
    while (item := deltas.get()) is not _DONE:
        yield Event("text", text=item)
    if "error" in outcome:
        raise outcome["error"]
    reply = outcome.get("reply")
    if reply is None:
        raise BackendError("the model call ended without a reply")
    return reply
