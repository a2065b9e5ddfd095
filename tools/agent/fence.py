"""The data fence: how text from files, rules and people reaches a model without passing for an instruction.

Every such text goes into a prompt or a tool result inside one of `DATA_TAGS` (the system prompt
names them and tells the model never to obey what they hold), with its own tag look-alikes
neutralised so that it cannot close its fence. Prompts and tool results use these functions only.
"""

from __future__ import annotations

import re

from tools.vocabulary import display_class

DATA_TAGS = ("rules", "user_text", "file_name", "evidence")
_TAGS = "|".join(DATA_TAGS)
_TAG = re.compile(rf"<(?:{_TAGS})>\n?|\n?</(?:{_TAGS})>")  # a block's own line breaks go with its tags


def fence(text: str) -> str:
    """Neutralise tag look-alikes inside data so that data cannot close its own fence."""
    return str(text).replace("<", "‹").replace(">", "›")


def as_data(text: str, tag: str) -> str:
    """Text from a file, a rule or a person, inside a data tag the system prompt tells the model never to obey."""
    if tag not in DATA_TAGS:
        raise ValueError(f"{tag!r} is not a data tag the system prompt names ({', '.join(DATA_TAGS)})")
    return f"<{tag}>{fence(text)}</{tag}>"


def rule_lines(rules, *, with_class: bool = False) -> str:
    """Rules as '[id] (kind) text' lines, each text fenced (for inside a <rules> block); with_class adds
    the class each rule was written for: '[id] (kind, rule of screw) text'."""
    def label(rule) -> str:
        return f"{rule.kind}, rule of {fence(display_class(rule.class_name))}" if with_class else rule.kind
    return "\n".join(f"[{r.id}] ({label(r)}) {fence(r.text)}" for r in rules)


def for_people(text: str) -> str:
    """A text written for a model (a tool result, a reply that echoes one) as a person reads it: the data
    tags are the model's fence, so they are removed; what they held stays, its tag look-alikes shown as ‹ ›."""
    return _TAG.sub("", str(text))
