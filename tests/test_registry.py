from typing import Literal

from tools.agent.registry import REGISTRY, ToolResult, call_tool, schema_for, tool


def sample_tool(ctx, artifact_id: str, view: Literal["depth", "shaded"] = "shaded", count: int = 3,
                boxes: list[float] | None = None) -> ToolResult:
    """Do a thing.

    Args:
        artifact_id: id of the file.
        view: which view.
        count: how many.
        boxes: optional numbers.
    """
    if count < 0:
        raise ValueError("count must be positive\nsecond line")
    return ToolResult(f"{artifact_id}:{view}:{count}")


def test_schema_comes_from_signature_and_docstring():
    schema = schema_for(sample_tool)
    assert schema["required"] == ["artifact_id"]
    assert "ctx" not in schema["properties"]
    assert schema["properties"]["view"] == {"type": "string", "enum": ["depth", "shaded"], "description": "which view.",
                                            "default": "shaded"}
    assert schema["properties"]["boxes"]["type"] == "array"
    assert schema["properties"]["artifact_id"]["description"] == "id of the file."


def test_call_tool_runs_with_context_and_reports_errors_as_results():
    tool(sample_tool, name="sample_for_test")
    try:
        assert call_tool("sample_for_test", {"artifact_id": "a1"}, ctx=None).text == "a1:shaded:3"
        bad = call_tool("sample_for_test", {"artifact_id": "a1", "count": -1}, ctx=None)
        assert bad.error and bad.text == "Error: count must be positive"
        unknown_arg = call_tool("sample_for_test", {"artifact_id": "a1", "colour": 1}, ctx=None)
        assert unknown_arg.error and "colour" in unknown_arg.text
    finally:
        REGISTRY.pop("sample_for_test")


def test_unknown_tool_is_an_error_result():
    result = call_tool("no_such_tool", {}, ctx=None)
    assert result.error and "no tool named" in result.text


def test_knowledge_changing_tool_is_refused_for_operators():
    class Ctx:
        can_edit_knowledge = False

    @tool(name="change_for_test", changes_knowledge=True)
    def change(ctx, text: str) -> ToolResult:
        """Change."""
        return ToolResult("changed")

    try:
        result = call_tool("change_for_test", {"text": "x"}, Ctx())
        assert result.error and "may not change" in result.text
    finally:
        REGISTRY.pop("change_for_test")
