"""Recognising explicit teaching in a person's message: "rule for bottle: ...", "remember that ...",
"for screw bags, two washers are required", "a screw bag must contain two washers"."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RULE_FOR = re.compile(r"^\s*(?:please\s+)?(?:add\s+(?:a\s+)?)?(?:(?:normality|logical|defect)\s+)?rule\s+for\s+"
                       r"(?P<cls>[^:]{1,60}?)\s*:\s*(?P<text>.+)$", re.I | re.S)
_REMEMBER = re.compile(r"^\s*(?:please\s+)?(?:remember|note|learn)(?:\s+that)?\s*[:,]?\s+(?P<text>.+)$", re.I | re.S)
_FOR_CLASS = re.compile(r"^\s*for\s+(?P<cls>(?:[\w-]+\s+){0,3}?[\w-]+)\s*[,:]?\s+(?P<text>(?:the|a|an|each|every|all|"
                        r"there|it|they|its|their|one|two|three|four|no|only|exactly|at)\b.+)$", re.I | re.S)
_OBLIGATION = re.compile(r"\b(must|should|always|never|has to|have to|needs? to|is required|are required|"
                         r"required|may not|must not|cannot)\b", re.I)
_LOGICAL = re.compile(r"\b(\d+|one|two|three|four|five|six|exactly|at least|at most|count|number of|left of|"
                      r"right of|above|below|next to|match|same as)\b", re.I)
_DEFECT = re.compile(r"\b(is|are|counts as|count as) (a )?(defect|defective|anomal\w*|scrap|reject\w*)\b", re.I)


@dataclass
class Lesson:
    class_name: str | None  # None: the person did not say and the context must supply it
    text: str
    kind: str


def canonical(name: str) -> str:
    words = re.sub(r"[-_\s]+", " ", name.strip().lower()).split()
    if words:
        last = words[-1]
        words[-1] = last[:-2] if last.endswith(("shes", "ches", "xes")) else last[:-1] if last.endswith("s") and not last.endswith("ss") else last
    return "_".join(words)


def match_class(name: str, known: list[str]) -> str | None:
    """The known class a name refers to, tolerant of case, separators and plurals."""
    wanted = canonical(name)
    return next((k for k in known if canonical(k) == wanted), None)


def _class_in_text(text: str, known: list[str]) -> str | None:
    """A known class named at the start of a sentence like "a screw bag must contain ..."."""
    words = re.findall(r"[\w-]+", text.lower())
    start = 1 if words and words[0] in ("a", "an", "the", "every", "each", "all") else 0
    for length in (4, 3, 2, 1):
        found = match_class(" ".join(words[start:start + length]), known)
        if found:
            return found
    return None


def kind_of(text: str) -> str:
    if _DEFECT.search(text):
        return "defect"
    return "logical" if _LOGICAL.search(text) else "normality"


def find_lesson(message: str, known_classes: list[str]) -> Lesson | None:
    """The rule a person explicitly teaches in a message, or None when they do not teach."""
    text = message.strip()
    for pattern in (_RULE_FOR, _FOR_CLASS):
        found = pattern.match(text)
        if found and (pattern is _RULE_FOR or _OBLIGATION.search(found.group("text"))):
            named = found.group("cls").strip()
            rule = found.group("text").strip()
            return Lesson(match_class(named, known_classes) or named, rule, kind_of(rule))
    found = _REMEMBER.match(text)
    if found:
        rule = found.group("text").strip()
        return Lesson(_class_in_text(rule, known_classes), rule, kind_of(rule))
    if _OBLIGATION.search(text):
        named = _class_in_text(text, known_classes)
        if named:
            return Lesson(named, text, kind_of(text))
    return None
