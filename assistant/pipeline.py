"""The analysis pipeline: plain functions of (knowledge base, settings, turn) that Session runs as steps.

    load_files -> render_view -> choose_class -> retrieve_knowledge -> gather_evidence -> prompt_images

then assistant.agent.ask_for_verdict. Each function reads what it needs from its arguments and
records what it finds in the TurnContext (the class, rules, suggestions and notes), so the offline
backend and follow-up turns see it; none keeps state of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.analysis import PromptImages, TurnContext
from assistant.backends.base import EncodedImage, EncodedImages
from tools.agent.consent import known_class_named_in
from tools.agent.evidence import (
    Evidence,
    ReferenceView,
    gather,
    references_wanted,
    stored_references,
    turn_references,
)
from tools.inputs.artifacts import Artifact, load
from tools.vocabulary import display_class, split_rules

SUGGEST_MIN_SIMILARITY = 0.80
RELATED_RULE_MIN_SIMILARITY = 0.45  # below this a rule of another class is noise, not guidance
GENERIC_CLASS = {"series": "time_series", "video": "video"}  # seed guidance used when no class is named


@dataclass
class SessionRule:
    """A rule given for one run (`ask --rule`), not stored."""

    id: str
    text: str
    kind: str = "normality"
    class_name: str | None = None


def run_rules(texts) -> list[SessionRule]:
    """The rules given for this run, numbered run-1, run-2, ..."""
    return [SessionRule(f"run-{i}", text) for i, text in enumerate(texts, 1)]


def load_files(files, names=None) -> list[Artifact]:
    """Every file as an Artifact, in order; `names` are the names the person gave them (display only)."""
    names = list(names or [])
    return [load(Path(path), name=names[i] if i < len(names) else None) for i, path in enumerate(files)]


def render_view(settings, artifact: Artifact, class_name: str | None, references=()):
    """The 2-D view of an artifact that the model and the experts see; reference scans given with the
    turn may fix the class's camera first (references fix it, never the query)."""
    from tools.render.views import fix_class_camera, to_image

    fix_class_camera(class_name, settings.cache_dir, list(references))
    return to_image(artifact, class_name=class_name, cache_dir=settings.cache_dir)


def class_in_question(turn: TurnContext) -> str | None:
    """A known class the person's message names ("is this bracket ok?"), used when no class was chosen."""
    named = known_class_named_in(turn.question, turn.known_classes)
    if named:
        turn.notes.append(f"No class was chosen; judged as {display_class(named)}, the known class your message names.")
    return named


def choose_class(kb, turn: TurnContext, class_name: str | None, image) -> str | None:
    """The class named by the person, else generic guidance for the modality, else the most similar
    known class when it is similar enough (the suggestions are kept in the turn)."""
    if class_name:
        return class_name.strip()
    if turn.modality != "image":
        return GENERIC_CLASS.get(turn.modality)
    turn.suggested_classes = kb.suggest_classes(image, k=3)
    if turn.suggested_classes and turn.suggested_classes[0][1] >= SUGGEST_MIN_SIMILARITY:
        name, similarity = turn.suggested_classes[0]
        turn.notes.append(f"No class was given; judged as {display_class(name)}, the most similar known class "
                          f"(similarity {similarity:.2f}), with its rules and references.")
        return name
    return None


def suggestion_notice(turn: TurnContext) -> str:
    """What the person is told about the suggested classes ('' when there were none), saying which was used."""
    if not turn.suggested_classes:
        return ""
    listed = ", ".join(f"{display_class(name)} ({similarity:.2f})" for name, similarity in turn.suggested_classes)
    if turn.class_name:
        used = f"judged as {display_class(turn.class_name)}"
    else:
        used = f"none is similar enough (at least {SUGGEST_MIN_SIMILARITY:.2f}), so no class was used"
    return f"No class given; most similar known classes: {listed}: {used}. Name the class to choose another."


def retrieve_knowledge(kb, settings, turn: TurnContext, image, extra_refs: list[Artifact], k: int) -> list[ReferenceView]:
    """The turn's rules (the class's, else the closest by meaning) and up to k reference normals: the
    files given with this turn first, then the stored ones nearest to the query (k raised to what the
    kind's expert needs: at least 4 for a point cloud, since the 3-D expert calibrates on its references;
    k = 0, as an evaluation asks, still means no stored one)."""
    refs = turn_references(extra_refs, turn.class_name, settings.cache_dir)
    k = references_wanted(turn.modality, k)
    turn.rules = rules_for(kb, turn.class_name, turn.question)
    if turn.class_name:
        refs += stored_references(kb, turn.class_name, image, max(0, k - len(refs)), settings.cache_dir)
        if split_rules(turn.rules, turn.class_name)[1]:
            turn.notes.append(f"No rules stored for {display_class(turn.class_name)}; used the closest rules by meaning.")
    else:
        turn.notes.append(_unknown_class_note(turn.rules))
    if not refs and turn.strategy.uses("reference"):
        turn.notes.append("No reference normal is stored for this class; analysed without one "
                          "(add one with `anomaly-chat kb add-ref` or the knowledge panel).")
    return refs


def rules_for(kb, class_name: str | None, question: str = "") -> list:
    """The rules an analysis of this class uses: the class's own, else the closest rules of other
    classes by meaning (to the question, else to the class name); without a class, those closest to the question."""
    if class_name:
        return kb.rules(class_name) or related_rules(kb, question or display_class(class_name))
    return related_rules(kb, question) if question else []


def _unknown_class_note(rules) -> str:
    """What a verdict without a class was judged with, in words that match the rules it lists."""
    if not rules:
        return "The class is unknown; judged without class-specific rules."
    used = ", ".join(f"{r.id} ({display_class(r.class_name)})" for r in rules)
    return f"The class is unknown; used the rules closest in meaning to the question instead: {used}."


def related_rules(kb, text: str) -> list:
    """Rules of any class close in meaning to a text (a question, or a class without rules)."""
    return [rule for rule, similarity in kb.search_rules(text, k=3) if similarity >= RELATED_RULE_MIN_SIMILARITY]


def gather_evidence(kb, settings, turn: TurnContext, query: Artifact, image, refs, use_expert: bool) -> Evidence:
    """The experts' findings for the query, with the class's expert settings; its notes join the turn's."""
    class_settings = kb.class_settings(turn.class_name) if turn.class_name else {}
    evidence = gather(query, image, refs, class_settings=class_settings, cache_dir=settings.cache_dir,
                      use_expert=use_expert, class_name=turn.class_name)
    turn.evidence = evidence
    turn.notes += evidence.notes
    return evidence


def prompt_images(encoded: EncodedImages, turn: TurnContext, query: Artifact, image, refs, evidence) -> PromptImages:
    """The turn's pictures encoded for the model; keyed by content and class (the class fixes the
    render camera), so a later turn that sends the same picture reuses its encoding."""
    cls = turn.class_name
    references = [encoded.get((r.key, cls), r.image, f"reference {i}") for i, r in enumerate(refs, 1)]
    expert = None
    if evidence.composite is not None:
        expert = EncodedImage.from_pil(evidence.composite, "expert", encoded.long_side)
    return PromptImages(encoded.get((query.sha256, cls), image, "query"), references, expert)
