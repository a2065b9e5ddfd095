"""The tools the agent offers to a model: plain typed functions, registered by decorator.

A tool's JSON schema is derived from its signature and docstring (one source of truth). A tool
that needs session state takes a first parameter named `ctx` (a `ToolContext`), which is injected
and never shown to the model. A failing tool becomes an "Error: ..." result for the model.
"""

from __future__ import annotations

import inspect
import re
import time
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tools.agent.fence import fence
from tools.errors import AnomalyChatError
from tools.vocabulary import PROMPT_PARTS


@dataclass
class ToolResult:
    """What a tool gives back: text for the model, optional images, optional structured data."""

    text: str
    images: list = field(default_factory=list)  # PIL images, sent to the model after the text
    data: dict = field(default_factory=dict)
    error: bool = False
    duration_s: float = 0.0


class ToolContext(Protocol):
    """What a tool may use from the running session (implemented in assistant/)."""

    artifacts: dict  # artifact id -> tools.inputs.artifacts.Artifact
    kb: Any  # knowledge.store.KnowledgeBase
    author: str
    can_edit_knowledge: bool
    user_text: str  # what the person wrote in this turn (knowledge may only be taught from it)
    class_name: str | None  # the class of the current inspection, if known
    cache_dir: Any  # Path for renders and expert caches
    evidence: Any  # tools.agent.evidence.Evidence of the last analysis, or None
    rules: list  # the rules the last analysis used


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict
    fn: Callable[..., ToolResult]
    needs_ctx: bool
    changes_knowledge: bool = False
    reveals: str | None = None  # the prompt part (tools.vocabulary.PROMPT_PARTS) its results would hand the model

    def spec(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


REGISTRY: dict[str, Tool] = {}


_PY_TO_JSON = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _json_type(annotation) -> dict:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation in _PY_TO_JSON:
        return {"type": _PY_TO_JSON[annotation]}
    if origin is Literal:
        return {"type": _PY_TO_JSON[type(args[0])], "enum": list(args)}
    if origin in (list, tuple):
        item = args[0] if args else str
        return {"type": "array", "items": _json_type(item)}
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _json_type(non_none[0])
    raise TypeError(f"tool parameter type {annotation!r} has no JSON schema mapping")


def _param_docs(doc: str) -> dict[str, str]:
    """Descriptions from a Google-style 'Args:' section."""
    found, in_args = {}, False
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            in_args = True
            continue
        if in_args:
            match = re.match(r"\s+(\w+)(?: \(.*?\))?:\s*(.+)", line)
            if match:
                found[match.group(1)] = match.group(2).strip()
            elif line.strip() and not line.startswith(" "):
                in_args = False
    return found


def schema_for(fn: Callable) -> dict:
    """JSON schema of a function's parameters (ctx excluded)."""
    hints = typing.get_type_hints(fn)
    docs = _param_docs(inspect.getdoc(fn) or "")
    props, required = {}, []
    for name, param in inspect.signature(fn).parameters.items():
        if name == "ctx":
            continue
        prop = _json_type(hints[name])
        if name in docs:
            prop["description"] = docs[name]
        if param.default is inspect.Parameter.empty:
            required.append(name)
        else:
            prop["default"] = param.default
        props[name] = prop
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def tool(fn: Callable | None = None, *, name: str | None = None, changes_knowledge: bool = False,
         reveals: str | None = None):
    """Register a function as a tool for the agent; `reveals` names the prompt part its results amount to
    (an analysis whose strategy leaves that part out does not offer the tool)."""
    if reveals is not None and reveals not in PROMPT_PARTS:
        raise ValueError(f"reveals={reveals!r} is not a prompt part ({', '.join(PROMPT_PARTS)})")

    def register(func: Callable) -> Callable:
        doc = inspect.getdoc(func) or ""
        summary = doc.split("\n\n")[0].replace("\n", " ").strip()
        tool_name = name or func.__name__
        needs_ctx = "ctx" in inspect.signature(func).parameters
        REGISTRY[tool_name] = Tool(tool_name, summary, schema_for(func), func, needs_ctx, changes_knowledge, reveals)
        return func

    return register(fn) if fn is not None else register


def call_tool(name: str, arguments: dict, ctx: ToolContext | None) -> ToolResult:
    """Run a registered tool; every failure comes back as an error result, never an exception."""
    started = time.perf_counter()
    result = _call(name, arguments, ctx)
    result.duration_s = time.perf_counter() - started
    return result


def _call(name: str, arguments: dict, ctx) -> ToolResult:
    spec = REGISTRY.get(name)
    if spec is None:
        return ToolResult(f"Error: no tool named {name!r}; available: {', '.join(sorted(REGISTRY))}", error=True)
    if not isinstance(arguments, dict):
        return ToolResult("Error: tool arguments must be a JSON object", error=True)
    allowed = set(spec.parameters["properties"])
    unknown = sorted(set(arguments) - allowed)
    missing = [p for p in spec.parameters["required"] if p not in arguments]
    if unknown or missing:
        return ToolResult(f"Error: bad arguments for {name}: unknown {unknown}, missing {missing}", error=True)
    if spec.changes_knowledge and ctx is not None and not ctx.can_edit_knowledge:
        return ToolResult("Error: this user may not change the knowledge base (operator role)", error=True)
    try:
        out = spec.fn(ctx, **arguments) if spec.needs_ctx else spec.fn(**arguments)
    except (AnomalyChatError, ValueError, TypeError, KeyError, OSError) as exc:
        # a message may quote a file's name or a person's words: tag look-alikes are neutralised
        return ToolResult(f"Error: {fence(_one_line(exc))}", error=True)
    return out if isinstance(out, ToolResult) else ToolResult(str(out))


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
