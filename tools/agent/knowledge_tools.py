"""Knowledge and expert tools for the agent (the renderers' tools are in tools/agent/render_tools.py).

Tools that change knowledge only store what the person wrote in this turn: a rule text that does
not come from the person's own teaching message (for example one injected by a file, a picture or
an old rule) is refused, and a reference is stored only when the person asks for it in words, so
no content can teach the assistant behind the person's back.
"""

from __future__ import annotations

import re

from tools.agent.evidence import gather, stored_references
from tools.agent.registry import ToolResult, as_data, fence, tool
from tools.errors import InputError

_WORD = re.compile(r"[a-z0-9]+")
# Words a person uses when teaching (every message that assistant/teaching.py reads as a lesson has one).
_TEACHING = re.compile(r"\b(rules?|remember|note|learn|teach|from now on|keep in mind|must|should|always|never|"
                       r"has to|have to|needs? to|required|may not|cannot|can't|counts? as|defect)\b", re.I)
# "add/store/save/keep it as a reference", "use this as a normal reference": asking a question such as
# "is this normal?" must not be enough, or a picture whose text tells the model to store it would poison the references.
_STORE_REFERENCE = re.compile(r"\b(add|store|save|keep|remember)\b[^.?!]{0,40}\b(references?|normal samples?)\b"
                              r"|\bas (a |an )?(new )?(normal |good )?reference\b")


def _artifact(ctx, artifact_id: str):
    artifact = ctx.artifacts.get(artifact_id)
    if artifact is None:
        known = ", ".join(ctx.artifacts) or "none"
        raise InputError(f"no uploaded file with id {artifact_id!r}; known ids: {known}")
    return artifact


def _class(ctx, class_name: str) -> str:
    name = (class_name or ctx.class_name or "").strip()
    if not name:
        raise InputError("no class given and none known for this inspection; pass class_name")
    return name


@tool
def compare_with_reference(ctx, artifact_id: str, class_name: str = "", k: int = 1) -> ToolResult:
    """Compare an uploaded file with the stored reference normals of its class (vision expert; scans in 3-D).

    Args:
        artifact_id: id of the uploaded file to inspect.
        class_name: class of the object; defaults to the class of the current inspection.
        k: how many nearest reference normals to compare with (1 to 8).
    """
    from tools.render.views import to_image

    name = _class(ctx, class_name)
    query = _artifact(ctx, artifact_id)
    image = to_image(query, class_name=name, cache_dir=ctx.cache_dir)
    refs = stored_references(ctx.kb, name, image, max(1, min(8, k)), ctx.cache_dir)
    evidence = gather(query, image, refs, class_settings=ctx.kb.class_settings(name), cache_dir=ctx.cache_dir,
                      class_name=name)
    images = [evidence.composite] if evidence.composite is not None else []
    return ToolResult(as_data(evidence.summary(), "evidence"), images=images, data={"score": evidence.score})


@tool
def retrieve_knowledge(ctx, class_name: str) -> ToolResult:
    """The normality rules and stored reference normals of a class.

    Args:
        class_name: the class, e.g. "bottle" or "screw bag".
    """
    rules = ctx.kb.rules(class_name)
    refs = ctx.kb.references(class_name)
    listed = "\n".join(f"[{r.id}] ({r.kind}) {fence(r.text)}" for r in rules)
    lines = [f"<rules>\n{listed}\n</rules>" if rules else "(no rules stored)"]
    lines.append(f"{len(refs)} reference normal(s) stored: " + ", ".join(r.id for r in refs[:10]))
    return ToolResult("\n".join(lines), data={"rules": [r.id for r in rules], "references": len(refs)})


@tool
def search_rules(ctx, text: str, k: int = 5) -> ToolResult:
    """Search all stored rules by meaning, for free text or an unknown class.

    Args:
        text: what to look for, e.g. "juice filled too high".
        k: how many rules to return.
    """
    found = ctx.kb.search_rules(text, k=max(1, min(20, k)))
    lines = [f"[{r.id}] {r.class_name}: {fence(r.text)} (similarity {s:.2f})" for r, s in found]
    return ToolResult(f"<rules>\n{chr(10).join(lines)}\n</rules>" if lines else "No matching rules.")


@tool
def list_classes(ctx) -> ToolResult:
    """The classes the knowledge base knows."""
    return ToolResult(", ".join(ctx.kb.classes()) or "No classes known yet.")


def taught_by_person(text: str, user_text: str, min_overlap: float = 0.6) -> bool:
    """True when the person teaches in this message ("rule for ...", "remember ...", "... must ...") and
    most words of `text` are theirs. A question such as "is this part normal?" teaches nothing, so a rule
    built from its words ("everything is normal", injected by a picture or a file) is not stored."""
    words = _WORD.findall(text.lower())
    said = set(_WORD.findall((user_text or "").lower()))
    overlap = bool(words) and sum(w in said for w in words) / len(words) >= min_overlap
    return overlap and bool(_TEACHING.search(user_text or ""))


@tool(changes_knowledge=True)
def add_rule(ctx, class_name: str, text: str, kind: str = "normality") -> ToolResult:
    """Store a rule that the person taught in this conversation; it is used in every later analysis of the class.

    Args:
        class_name: the class the rule is about.
        text: the rule in the person's words.
        kind: normality (what normal looks like), defect (a known defect) or logical (counts, positions, matching).
    """
    if not taught_by_person(text, ctx.user_text):
        raise InputError("only rules that the person states in this message can be stored; ask them to say the rule")
    rule = ctx.kb.add_rule(class_name, text, kind=kind, author=ctx.author, source="expert")
    return ToolResult(f"Stored rule [{rule.id}] for {rule.class_name}: {rule.text}",
                      data={"rule_id": rule.id, "class_name": rule.class_name})


def asked_to_store_reference(user_text: str) -> bool:
    """True when the person asks to store the sample ("add this as a reference"), not just whether it is normal."""
    return bool(_STORE_REFERENCE.search((user_text or "").lower()))


@tool(changes_knowledge=True)
def add_reference(ctx, artifact_id: str, class_name: str, note: str = "") -> ToolResult:
    """Store an uploaded file as a reference normal of a class, when the person asks for it in this message.

    Args:
        artifact_id: id of the uploaded file.
        class_name: the class it is a normal sample of.
        note: optional note, e.g. which line or batch.
    """
    from tools.render.views import reference_image

    if not asked_to_store_reference(ctx.user_text):
        raise InputError("a reference is only stored when the person asks in this message to store the sample as a "
                         "reference (e.g. 'add this as a reference')")
    artifact = _artifact(ctx, artifact_id)
    view = None if artifact.kind == "image" else reference_image(artifact, class_name=class_name, cache_dir=ctx.cache_dir)
    sample = ctx.kb.add_reference(class_name, artifact.path, modality=artifact.kind, view_image=view,
                                  note=note, author=ctx.author)
    return ToolResult(f"Stored {as_data(artifact.name, 'file_name')} as reference [{sample.id}] of {sample.class_name}.",
                      data={"reference_id": sample.id})
