"""Knowledge and expert tools for the agent (the renderers' tools are in tools/agent/render_tools.py).

Tools that change knowledge only store what the person wrote in this turn: a rule text that is not
a run of the person's own teaching message keeping its negations and numbers, or that is filed under
a class they did not name (for example one changed by text in a file, a picture or an old rule), is
refused, and a reference is stored only when the person asks for it in words, so
no content can teach the assistant behind the person's back (tools/agent/consent.py recognises
both). Texts from files, rules and people reach a result only through the data fence.
"""

from __future__ import annotations

from tools.agent.consent import asked_to_store_reference, rule_refusal
from tools.agent.evidence import gather, references_wanted, stored_references
from tools.agent.fence import as_data, fence, rule_lines
from tools.agent.registry import ToolResult, tool
from tools.errors import InputError
from tools.vocabulary import display_class


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


@tool(reveals="reference")
def compare_with_reference(ctx, artifact_id: str, class_name: str = "", k: int = 1) -> ToolResult:
    """Compare an uploaded file with the stored reference normals of its class (vision expert; scans in 3-D).

    Args:
        artifact_id: id of the uploaded file to inspect.
        class_name: class of the object; defaults to the class of the current inspection.
        k: how many nearest reference normals to compare with (1 to 8; a scan is compared with at least 4).
    """
    from tools.render.views import to_image

    name = _class(ctx, class_name)
    query = _artifact(ctx, artifact_id)
    image = to_image(query, class_name=name, cache_dir=ctx.cache_dir)
    refs = stored_references(ctx.kb, name, image, references_wanted(query.kind, max(1, min(8, k))), ctx.cache_dir)
    evidence = gather(query, image, refs, class_settings=ctx.kb.class_settings(name), cache_dir=ctx.cache_dir,
                      class_name=name)
    images = [evidence.composite] if evidence.composite is not None else []
    return ToolResult(as_data(evidence.summary(), "evidence"), images=images, data={"score": evidence.score})


@tool(reveals="rules")
def retrieve_knowledge(ctx, class_name: str) -> ToolResult:
    """The normality rules and stored reference normals of a class.

    Args:
        class_name: the class, e.g. "bottle" or "screw bag".
    """
    rules = ctx.kb.rules(class_name)
    refs = ctx.kb.references(class_name)
    lines = [f"<rules>\n{rule_lines(rules)}\n</rules>" if rules else "(no rules stored)"]
    lines.append(f"{len(refs)} reference normal(s) stored: " + ", ".join(r.id for r in refs[:10]))
    return ToolResult("\n".join(lines), data={"rules": [r.id for r in rules], "references": len(refs)})


@tool(reveals="rules")
def search_rules(ctx, text: str, k: int = 5) -> ToolResult:
    """Search all stored rules by meaning, for free text or an unknown class.

    Args:
        text: what to look for, e.g. "juice filled too high".
        k: how many rules to return.
    """
    found = ctx.kb.search_rules(text, k=max(1, min(20, k)))
    lines = [f"[{r.id}] {r.class_name}: {fence(r.text)} (similarity {s:.2f})" for r, s in found]
    return ToolResult(f"<rules>\n{chr(10).join(lines)}\n</rules>" if lines else "No matching rules.")


@tool(reveals="class")
def list_classes(ctx) -> ToolResult:
    """The classes the knowledge base knows."""
    classes = ctx.kb.classes()  # named by people, so fenced like their words
    return ToolResult(as_data(", ".join(classes), "user_text") if classes else "No classes known yet.")


@tool(changes_knowledge=True)
def add_rule(ctx, class_name: str, text: str, kind: str = "normality") -> ToolResult:
    """Store a rule that the person taught in this message; it is used in every later analysis of the class.

    Args:
        class_name: the class the person named for the rule (else the class being inspected).
        text: the rule exactly as the person wrote it (a part of their message, every "not", "never" and number kept).
        kind: normality (what normal looks like), defect (a known defect) or logical (counts, positions, matching).
    """
    refusal = rule_refusal(text, class_name, ctx.user_text, ctx.kb.classes(), ctx.class_name)
    if refusal:
        raise InputError(refusal)
    rule = ctx.kb.add_rule(class_name, text, kind=kind, author=ctx.author, source="expert")
    return ToolResult(f"Stored rule [{rule.id}] for {display_class(rule.class_name)}: {as_data(rule.text, 'rules')}",
                      data={"rule_id": rule.id, "class_name": rule.class_name})


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
    return ToolResult(f"Stored {as_data(artifact.name, 'file_name')} as reference [{sample.id}] of {display_class(sample.class_name)}.",
                      data={"reference_id": sample.id})
