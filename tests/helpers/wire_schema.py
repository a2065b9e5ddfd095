"""Request bodies checked against the providers' own wire types, so a malformed request fails its test.

OpenAI: the SDK's request TypedDicts (`CompletionCreateParamsNonStreaming` / `Streaming`) validated
by pydantic, made strict: every TypedDict forbids keys it does not declare (pydantic ignores them by
default) and `Iterable[...]` fields are checked item by item (pydantic checks them lazily otherwise).
Gemini: google-genai's pydantic types (`Content`, `GenerationConfig`, `Tool`, `ToolConfig`, ...), which
forbid unknown fields and accept the REST body's camelCase and snake_case names, as the API does.
"""

from __future__ import annotations

import copy
from functools import lru_cache


def openai_request_error(body) -> str | None:
    """Why a Chat Completions request body is malformed, or None when it is well formed."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    validator = _openai_validator(bool(body.get("stream")))
    try:
        validator.validate_python(body)
    except Exception as exc:  # noqa: BLE001 - pydantic_core.ValidationError, reported as text
        return _short(exc)
    return None


def gemini_request_error(raw: bytes) -> str | None:
    """Why a generateContent request body is malformed, or None when it is well formed."""
    try:
        _gemini_request().model_validate_json(raw)
    except Exception as exc:  # noqa: BLE001 - pydantic.ValidationError, reported as text
        return _short(exc)
    return None


@lru_cache(maxsize=2)
def _openai_validator(streaming: bool):
    from openai.types.chat import completion_create_params as params
    from pydantic import TypeAdapter
    from pydantic_core import SchemaValidator

    kind = params.CompletionCreateParamsStreaming if streaming else params.CompletionCreateParamsNonStreaming
    schema = copy.deepcopy(TypeAdapter(kind).core_schema)
    _make_strict(schema)
    return SchemaValidator(schema)


def _make_strict(schema) -> None:
    """Forbid undeclared keys in every TypedDict; validate iterables eagerly, as lists."""
    if isinstance(schema, dict):
        if schema.get("type") == "typed-dict":
            schema["extra_behavior"] = "forbid"
        if schema.get("type") == "generator":
            schema["type"] = "list"
        for value in schema.values():
            _make_strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _make_strict(value)


@lru_cache(maxsize=1)
def _gemini_request():
    from google.genai import types
    from pydantic import ConfigDict, create_model
    from pydantic.alias_generators import to_camel

    config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    return create_model(
        "GenerateContentRequest", __config__=config,
        contents=(list[types.Content], ...),
        system_instruction=(types.Content | None, None),
        generation_config=(types.GenerationConfig | None, None),
        tools=(list[types.Tool] | None, None),
        tool_config=(types.ToolConfig | None, None),
        safety_settings=(list[types.SafetySetting] | None, None),
        cached_content=(str | None, None),
        labels=(dict[str, str] | None, None),
    )


def _short(exc: Exception, lines: int = 12) -> str:
    """The validation error's first lines (a union mismatch lists every member)."""
    text = str(exc).splitlines()
    return "\n".join(text[:lines]) + (f"\n... ({len(text) - lines} more lines)" if len(text) > lines else "")
