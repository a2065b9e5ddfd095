"""The person's consent, recognised in one place: are they teaching a rule, or asking to store a reference?

Knowledge changes only on the person's word, never on a model's, a file's or a picture's. The
offline backend reads lessons with `find_lesson`; the knowledge tools accept a rule only when
`taught_by_person` and a reference only when `asked_to_store_reference`, whoever calls them. Every
message `find_lesson` reads as a lesson also counts as teaching for `taught_by_person` (tested).
The app offers to store files as reference normals when `offers_references` reads a message as
saying they are normal ("these are normal", "add these three as reference normals for bottle"); the
person then decides with a button, so the wording only decides what is offered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.vocabulary import class_key

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
# Words a person uses when teaching; a superset of what find_lesson needs.
_TEACHING = re.compile(r"\b(rules?|remember|note|learn|teach|from now on|keep in mind|must|should|always|never|"
                       r"has to|have to|needs? to|required|may not|cannot|can't|counts? as|defect)\b", re.I)
# "add/store/save/keep it as a reference", "use this as a normal reference": asking a question such as
# "is this normal?" must not be enough, or a picture whose text tells the model to store it would poison the references.
_STORE_REFERENCE = re.compile(r"\b(add|store|save|keep|remember)\b[^.?!]{0,40}\b(references?|normal samples?)\b"
                              r"|\bas (a |an )?(new )?(normal |good )?reference\b")
_WORD = re.compile(r"[a-z0-9]+")
_NORMAL_NOUNS = (r"(references?|reference normals?|normals|(normal|good|ok|golden|defect[- ]free) (samples?|parts?|ones?|"
                 r"images?|pictures?|photos?|examples?|references?)|golden samples?|baselines?)")
_STORE_AS_NORMAL = re.compile(r"\b(add|store|save|keep|use|take|register|mark|upload|put)\b[^.!?]{0,60}?\b"
                              + _NORMAL_NOUNS + r"\b")
_SAYS_NORMAL = re.compile(r"\b(these|this|they|those|both|all|each|it|here)\b[^.!?]{0,30}?\b(are|is|'re|'s|look|looks|"
                          r"seem|seems)\b[^.!?]{0,20}?\b(normal|good|fine|ok|okay|defect[- ]free|flawless|perfect|"
                          r"normals|references?)\b")
_NAMES_NORMALS = re.compile(r"^\s*((\d+|two|three|four|five|six|some|more|a few|several)\s+)?" + _NORMAL_NOUNS + r"\b")
_QUESTION = re.compile(r"\?|^\s*(is|are|does|do|did|can|could|would|will|what|why|how|which|any|anything)\b")
_NEGATION = re.compile(r"\b(not|never|no longer|isn't|aren't|doesn't|don't)\b|n't\b")
_FOR_CLASS_NAME = re.compile(r"\b(?:for|of)\s+(?:the\s+|a\s+|an\s+)?(?P<cls>[a-z][\w-]*(?:\s+[a-z][\w-]*){0,3})\s*[.!]*\s*$")


@dataclass
class Lesson:
    class_name: str | None  # None: the person did not say and the context must supply it
    text: str
    kind: str  # one of tools.vocabulary.RULE_KINDS


def _singular(key: str) -> str:
    """A class key with its last word made singular ('screw_bags' -> 'screw_bag', 'boxes' -> 'box')."""
    head, _, last = key.rpartition("_")
    if last.endswith(("shes", "ches", "xes")):
        last = last[:-2]
    elif last.endswith("s") and not last.endswith("ss"):
        last = last[:-1]
    return f"{head}_{last}" if head else last


def match_class(name: str, known: list[str]) -> str | None:
    """The known class a name refers to, tolerant of case, separators and plurals."""
    wanted = _singular(class_key(name))
    return next((k for k in known if _singular(class_key(k)) == wanted), None)


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
    """The rule kind a lesson's text reads as: defect, logical (counts, positions) or normality."""
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


def is_teaching(message: str) -> bool:
    """True when a person's message teaches ("rule for ...", "remember ...", "... must ...")."""
    return bool(_TEACHING.search(message or ""))


def taught_by_person(text: str, user_text: str, min_overlap: float = 0.6) -> bool:
    """True when the person teaches in this message and most words of `text` are theirs. A question such
    as "is this part normal?" teaches nothing, so a rule built from its words ("everything is normal",
    injected by a picture or a file) is not stored."""
    words = _WORD.findall(text.lower())
    said = set(_WORD.findall((user_text or "").lower()))
    overlap = bool(words) and sum(w in said for w in words) / len(words) >= min_overlap
    return overlap and is_teaching(user_text)


def asked_to_store_reference(user_text: str) -> bool:
    """True when the person asks to store the sample ("add this as a reference"), not just whether it is normal."""
    return bool(_STORE_REFERENCE.search((user_text or "").lower()))


def offers_references(text: str, *, with_files: bool = True) -> bool:
    """True when a message says its files are normal, or asks to store them (or, without files, the last
    inspected one) as reference normals. Only an offer: the person confirms it with a button."""
    said = (text or "").lower().replace("’", "'").strip()
    if find_lesson(said, []) is not None or re.search(r"\b(keep in mind|from now on)\b", said):
        return False  # teaching a rule about normal parts is not handing over samples
    if _STORE_AS_NORMAL.search(said):
        return True
    if not with_files or _QUESTION.search(said) or _NEGATION.search(said):
        return False
    return bool(_SAYS_NORMAL.search(said) or _NAMES_NORMALS.search(said))


def class_named_in(text: str, known: list[str]) -> str | None:
    """The class a message names: the longest run of words that is a known class, else the words after a final
    "for"/"of" ("... reference normals for gear wheel" -> "gear wheel"), else None."""
    words = re.findall(r"[\w-]+", (text or "").lower())
    for length in (4, 3, 2, 1):
        for start in range(len(words) - length + 1):
            found = match_class(" ".join(words[start:start + length]), known)
            if found:
                return found
    tail = _FOR_CLASS_NAME.search((text or "").lower().strip())
    return tail.group("cls") if tail else None
