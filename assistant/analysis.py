"""One analysis turn's context and the paper's prompt, assembled from the chosen strategy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from assistant import prompts
from assistant.backends.base import EncodedImage, Message
from assistant.prompts import Strategy
from tools.agent.fence import fence, rule_lines
from tools.vocabulary import split_rules


@dataclass
class TurnContext:
    """Everything known about a turn. Network backends see it only through the messages; the
    offline backend reads it directly (it has no eyes of its own)."""

    mode: Literal["analysis", "followup", "chat"]
    question: str = ""
    class_name: str | None = None
    modality: str | None = None
    artifact_id: str | None = None
    rules: list = field(default_factory=list)
    evidence: object = None  # tools.agent.evidence.Evidence
    verdict: object = None  # the latest Verdict, for follow-ups
    known_classes: list = field(default_factory=list)
    suggested_classes: list = field(default_factory=list)  # [(name, similarity)]
    notes: list = field(default_factory=list)
    strategy: Strategy | None = None


@dataclass
class PromptImages:
    query: EncodedImage
    references: list[EncodedImage] = field(default_factory=list)
    expert: EncodedImage | None = None


def analysis_messages(turn: TurnContext, images: PromptImages) -> list[Message]:
    """System and user messages for one analysis: instruction, class, rules, references, query,
    expert evidence and the format prompt, in the paper's order (references before the query)."""
    strategy = turn.strategy or Strategy.parse(prompts.DEFAULT_STRATEGY)
    parts: list = [prompts.TASK.format(what=prompts.WHAT.get(turn.modality or "image", "image"))]
    if strategy.uses("class") and turn.class_name:  # the only part that names the class
        parts.append(prompts.CLASS.format(class_name=fence(turn.class_name)))
    if strategy.uses("rules"):
        parts += rule_parts(turn.rules, turn.class_name)
    if strategy.uses("reference"):
        parts += _reference_parts(images.references)
    parts += ["Image 'query':", images.query]
    if strategy.uses("expert") and turn.evidence is not None and (images.expert or turn.evidence.series):
        expert_text = prompts.EXPERT_BY_KIND.get(turn.modality, prompts.EXPERT)
        parts.append(expert_text.format(summary=fence(turn.evidence.summary())))
        if images.expert is not None:
            parts += ["Image 'expert':", images.expert]
    if turn.question:
        parts.append(prompts.QUESTION.format(question=fence(turn.question)))
    parts.append(prompts.FORMAT)
    return [Message("system", [prompts.SYSTEM]), Message("user", parts)]


def rule_parts(rules, class_name: str | None) -> list[str]:
    """The rules part: the class's own rules, and rules of related classes labelled as such, never as its own."""
    own, related = split_rules(rules, class_name)
    parts = [prompts.RULES.format(rules=rule_lines(own))] if own else []
    if related:
        parts.append(prompts.RELATED_RULES.format(rules=rule_lines(related, with_class=True)))
    return parts or [prompts.NO_RULES]


def _reference_parts(references: list[EncodedImage]) -> list:
    if not references:
        return [prompts.NO_REFERENCE]
    parts: list = [prompts.REFERENCE.format(n=len(references))]
    for i, ref in enumerate(references, 1):
        parts += [f"Image 'reference {i}':", ref]
    return parts


def chat_message(turn: TurnContext) -> Message:
    """A user message for a follow-up or a chat turn without a new file."""
    context = []
    if turn.class_name:
        context.append(f"Current class: {fence(turn.class_name)}.")
    if turn.known_classes:
        context.append("Known classes: " + ", ".join(fence(c) for c in turn.known_classes[:60]) + ".")
    context += [fence(note) for note in turn.notes]  # e.g. the last upload was refused: nothing was inspected
    instruction = prompts.FOLLOW_UP if turn.mode == "followup" else prompts.CHAT
    return Message("user", [instruction, *context, prompts.QUESTION.format(question=fence(turn.question))])


def trim_history(messages: list[Message], budget_chars: int = 24_000) -> list[Message]:
    """Drop the oldest text-only exchanges until the history fits; keep the system message, every
    message with images and the latest verdict (the last assistant message)."""
    def size(msgs):
        return sum(len(m.text) + 800 * len(m.images) for m in msgs)

    kept = list(messages)
    last_assistant = max((i for i, m in enumerate(kept) if m.role == "assistant"), default=-1)
    protected = {0, last_assistant, len(kept) - 1}
    i = 1
    while size(kept) > budget_chars and i < len(kept):
        if i not in protected and not kept[i].images and not kept[i].tool_calls and kept[i].role != "tool":
            kept.pop(i)
            protected = {p - 1 if p > i else p for p in protected}
            continue
        i += 1
    return kept
