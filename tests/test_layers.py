"""The layering rules of ARCHITECTURE.md, read from every import in the code (parsed with ast, so an
import inside a function counts as much as one at the top).

    tools/        imports neither assistant/, knowledge/ nor ui
    knowledge/    imports neither assistant/ nor ui
    assistant/    does not import ui, with one named exception: the CLI's `ui` command starts the app
    tools/inputs, tools/render, tools/experts   use nothing of tools/agent but its data fence
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXCEPTIONS = {("assistant/commands/ui.py", "ui")}  # `anomaly-chat ui` = `python ui.py`; named in ARCHITECTURE.md
RULES = [
    ("tools", ("assistant", "knowledge", "ui")),
    ("knowledge", ("assistant", "ui")),
    ("assistant", ("ui",)),
    ("tools/inputs", ("tools.agent",)),
    ("tools/render", ("tools.agent",)),
    ("tools/experts", ("tools.agent",)),
]
ALLOWED = ("tools.agent.fence",)  # the fence is for every text that reaches a model, whoever writes it


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module a Python file imports, anywhere in it (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return found


def _breaks(module: str, forbidden: tuple[str, ...]) -> bool:
    if any(module == ok or module.startswith(ok + ".") for ok in ALLOWED):
        return False
    return any(module == name or module.startswith(name + ".") for name in forbidden)


def violations(folder: str, forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """'file -> module' for every import in folder that its layer forbids (the named exceptions aside)."""
    found = []
    for path in sorted((root / folder).rglob("*.py")):
        name = path.relative_to(root).as_posix()
        found += [f"{name} -> {module}" for module in sorted(imported_modules(path, root))
                  if _breaks(module, forbidden) and (name, module.split(".")[0]) not in EXCEPTIONS]
    return found


@pytest.mark.parametrize(("folder", "forbidden"), RULES, ids=[folder for folder, _ in RULES])
def test_layer_imports_only_what_its_rule_allows(folder, forbidden):
    assert violations(folder, forbidden) == []


def test_the_named_exception_is_the_only_import_of_ui_from_assistant():
    assert "ui" in imported_modules(ROOT / "assistant/commands/ui.py")
    importers = [p.relative_to(ROOT).as_posix() for p in (ROOT / "assistant").rglob("*.py")
                 if "ui" in imported_modules(p)]
    assert importers == ["assistant/commands/ui.py"]


def test_the_scanner_sees_imports_inside_functions_and_relative_ones(tmp_path):
    package = tmp_path / "tools" / "render"
    package.mkdir(parents=True)
    (package / "bad.py").write_text("def f():\n    from assistant import session\n\nfrom ..agent import registry\n")
    assert violations("tools", ("assistant",), tmp_path) == ["tools/render/bad.py -> assistant",
                                                             "tools/render/bad.py -> assistant.session"]
    assert violations("tools/render", ("tools.agent",), tmp_path) == ["tools/render/bad.py -> tools.agent",
                                                                      "tools/render/bad.py -> tools.agent.registry"]
