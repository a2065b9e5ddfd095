"""The person's consent, recognised in one place: are they teaching a rule, or asking to store a reference?

Knowledge changes only on the person's word, never on a model's, a file's or a picture's. The
offline backend reads lessons with `find_lesson`; the knowledge tools accept a rule only when
`rule_refusal` finds nothing against it (the person teaches, the rule is a run of their own words that
keeps every negation, number and limit of its sentence, and its class is the one they named) and a
reference only when `asked_to_store_reference`, whoever calls them. Every message `find_lesson` reads
as a lesson also counts as teaching for `taught_by_person` (tested).
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
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"[.!?;:](?=\s|$)|\n")
# Words whose loss changes what a rule says: negations, numbers and limits ("never", "two", "at most").
MEANING_WORDS = frozenset({
    "not", "no", "never", "none", "nothing", "nobody", "nowhere", "neither", "nor", "without", "cannot",
    "unless", "except", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "twenty", "hundred", "thousand", "dozen", "both", "single", "double", "once", "twice",
    "half", "first", "second", "third", "only", "least", "most", "exactly", "more", "less", "fewer", "than",
    "max", "maximum", "min", "minimum", "above", "below", "over", "under",
})
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


def taught_by_person(text: str, user_text: str) -> bool:
    """True when the person teaches in this message and `text` is their own words (`words_refusal`)."""
    return is_teaching(user_text) and words_refusal(text, user_text) is None


def rule_refusal(text: str, class_name: str, user_text: str, known_classes: list[str],
                 current_class: str | None) -> str | None:
    """Why a rule may not be stored on the person's word, or None when it may: they must teach in this
    message, the rule must be their words, and its class the one they named (else the one inspected)."""
    if not is_teaching(user_text):
        return "only rules that the person states in this message can be stored; ask them to say the rule"
    return words_refusal(text, user_text) or class_refusal(class_name, user_text, known_classes, current_class)


def words_refusal(text: str, user_text: str) -> str | None:
    """None when `text` is a run of the person's own words that keeps every negation, number and limit
    word of the sentence it comes from; else why not. A question's words ("is everything normal?") or
    the words of "the cap must never be missing" without "never" are not a rule the person taught."""
    rule, said = [w for w, _ in _tokens(text)], _tokens(user_text)
    if not rule:
        return "the rule is empty; store the rule in the person's own words"
    runs = [i for i in range(len(said) - len(rule) + 1) if [w for w, _ in said[i:i + len(rule)]] == rule]
    if not runs:
        return ("only rules that the person states in this message can be stored, word for word as they "
                "wrote them; store their exact words")
    left_out = min((_left_out(said, start, start + len(rule)) for start in runs), key=len)
    if left_out:
        return (f"the rule leaves out {', '.join(repr(w) for w in left_out)} of the person's sentence, which "
                "changes its meaning; store the whole statement as they wrote it")
    return None


def class_refusal(class_name: str, user_text: str, known_classes: list[str], current_class: str | None) -> str | None:
    """None when the class is the one the person named for the rule (else one they mention, else the class
    being inspected); else why not."""
    lesson = find_lesson(user_text or "", known_classes)
    named = [lesson.class_name] if lesson and lesson.class_name else _classes_mentioned(user_text, known_classes)
    allowed = named or ([current_class] if current_class else [])
    if any(_same_class(class_name, c) for c in allowed):
        return None
    if not allowed:
        return "the person named no class for this rule; ask them which class it is for"
    return (f"the person's rule is for {' or '.join(repr(c) for c in allowed)}, not {class_name!r}; "
            "store it for the class they named")


def _tokens(text: str) -> list[tuple[str, int]]:
    """(word, sentence number) for every word: lower case, apostrophes kept ("isn't")."""
    sentences = _SENTENCE_END.split((text or "").lower().replace("\u2019", "'"))
    return [(w, i) for i, sentence in enumerate(sentences) for w in _TOKEN.findall(sentence)]


def _left_out(said: list[tuple[str, int]], start: int, end: int) -> list[str]:
    """The meaning words (negations, numbers, limits) of the sentences a run touches that lie outside it."""
    touched = {n for _, n in said[start:end]}
    return [w for i, (w, n) in enumerate(said) if n in touched and not start <= i < end and _changes_meaning(w)]


def _changes_meaning(word: str) -> bool:
    return word in MEANING_WORDS or word.endswith("n't") or any(c.isdigit() for c in word)


def _same_class(a: str, b: str) -> bool:
    return bool(a and b) and _singular(class_key(a)) == _singular(class_key(b))


def _classes_mentioned(text: str, known: list[str]) -> list[str]:
    """The known classes whose words appear in the text, plural or not ('screw bags' names screw_bag)."""
    words = " " + " ".join(_singular(w) for w, _ in _tokens(text)) + " "
    return [k for k in known if f" {' '.join(_singular(class_key(k)).split('_'))} " in words]


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
    found = known_class_named_in(text, known)
    if found:
        return found
    tail = _FOR_CLASS_NAME.search((text or "").lower().strip())
    return tail.group("cls") if tail else None


def known_class_named_in(text: str, known: list[str]) -> str | None:
    """The known class a message names (the longest run of words that is one), else None."""
    words = re.findall(r"[\w-]+", (text or "").lower())
    for length in (4, 3, 2, 1):
        for start in range(len(words) - length + 1):
            found = match_class(" ".join(words[start:start + length]), known)
            if found:
                return found
    return None
