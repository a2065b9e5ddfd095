"""The structured answer of one analysis, and how it is read from a model's reply.

Parsing is tolerant (the first JSON object in the text, code fences, the paper's legacy key
`correctness` where 1 = normal and 0 = anomaly) but never guesses: a reply that cannot be read is
a Verdict with parsed=False and the error, not a silent default.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field

from assistant.prompts import PROMPT_VERSION

SCORE_SOURCES = ("logprobs", "confidence", "expert", "verdict", "none")  # verdict: 1/0 from the verdict alone


@dataclass
class Verdict:
    anomalous: bool | None
    score: float | None
    score_source: str
    reasoning: str = ""
    defect_type: str = ""
    location: dict = field(default_factory=dict)  # {"box": [x0,y0,x1,y1] | None, "where": str}
    regions: list = field(default_factory=list)  # the vision expert's regions, when it ran
    rules_used: list = field(default_factory=list)
    class_name: str | None = None
    strategy: str = ""
    backend: str = ""
    model: str = ""
    prompt_version: str = ""
    parsed: bool = True
    parse_error: str | None = None
    notes: list = field(default_factory=list)  # e.g. "no reference stored for this class"
    usage: dict = field(default_factory=dict)  # tokens used by the model for this verdict

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        if self.anomalous is None:
            return "undecided" if self.parsed else "unparsed"
        return "anomalous" if self.anomalous else "normal"


@dataclass
class ParsedAnswer:
    anomalous: bool | None  # None: the answer explicitly says it cannot decide
    confidence: float | None
    reasoning: str
    defect_type: str
    location: dict
    rules_used: list


class VerdictParseError(ValueError):
    pass


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def first_json_object(text: str) -> dict:
    """The first JSON object in a text (inside code fences or not)."""
    return _first_json(text)[0]


def _first_json(text: str) -> tuple[dict, int]:
    """The first JSON object in a text and the offset where it starts (code fences are tried first)."""
    candidates = [(m.group(1), m.start(1)) for m in _FENCE.finditer(text)] + [(text, 0)]
    decoder = json.JSONDecoder()
    for chunk, offset in candidates:
        for start in [i for i, ch in enumerate(chunk) if ch == "{"][:50]:
            try:
                obj, _ = decoder.raw_decode(chunk[start:])
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj, offset + start
    if "{" in text and "}" not in text[text.index("{"):]:
        raise VerdictParseError("the JSON object is cut off (truncated reply)")
    raise VerdictParseError("no JSON object found in the reply")


def _as_bool(value, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "anomalous", "1", "false", "no", "normal", "0"):
        return value.strip().lower() in ("true", "yes", "anomalous", "1")
    raise VerdictParseError(f"{key!r} must be true or false, got {value!r}")


def _confidence(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(number):
        return None
    return min(1.0, max(0.0, number / 100 if number > 1 else number))


def _location(value) -> dict:
    if isinstance(value, str):
        return {"box": None, "where": value}
    if not isinstance(value, dict):
        return {"box": None, "where": ""}
    box = value.get("box")
    ok = isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
    box = [min(1.0, max(0.0, float(v))) for v in box] if ok else None
    return {"box": box, "where": str(value.get("where") or "")}


def parse_answer(text: str) -> ParsedAnswer:
    """Read the verdict JSON from a reply; raises VerdictParseError with a reason."""
    obj = first_json_object(text)
    if "anomalous" in obj and obj["anomalous"] is None:
        anomalous = None
    elif "anomalous" in obj:
        anomalous = _as_bool(obj["anomalous"], "anomalous")
    elif "correctness" in obj:  # the paper's format: 1 = normal, 0 = anomaly
        anomalous = not _as_bool(obj["correctness"], "correctness")
    else:
        raise VerdictParseError("the JSON has neither 'anomalous' nor 'correctness'")
    reasoning = obj.get("reasoning", obj.get("reason", ""))
    rules = obj.get("rules_used") or []
    return ParsedAnswer(
        anomalous=anomalous,
        confidence=_confidence(obj.get("confidence")),
        reasoning=str(reasoning),
        defect_type=str(obj.get("defect_type") or ("none" if anomalous is False else "")),
        location=_location(obj.get("location")),
        rules_used=[str(r) for r in rules] if isinstance(rules, list) else [],
    )


_TRUE = {"true", "yes"}
_FALSE = {"false", "no"}
_AROUND_VALUE = " \t\r\n\"':,{}[]"


def logprob_score(logprobs) -> float | None:
    """P(anomalous) from the alternatives of the token that holds the value of the verdict's `anomalous` key.

    The reply is rebuilt from its tokens and read like parse_answer reads it (the same JSON object); the
    value's first character is found by scanning that object's top level, so a "yes" in the reasoning
    text, or an `anomalous` key of a nested object, never decides the score."""
    if not logprobs:
        return None
    text = "".join(t.token for t in logprobs)
    try:
        _, start = _first_json(text)
    except VerdictParseError:
        return None
    offset = value_offset(text, start, "anomalous")
    token = _token_at(logprobs, offset) if offset is not None else None
    return _p_true(token) if token is not None else None


def value_offset(text: str, start: int, key: str) -> int | None:
    """Where the value of `key` begins, at the top level of the JSON object that starts at `start`."""
    depth, i = 0, start
    while i < len(text):
        if text[i] == '"':
            end = _string_end(text, i)
            after = _skip_space(text, end + 1)
            if depth == 1 and text[after:after + 1] == ":" and _string_value(text[i:end + 1]) == key:
                value = _skip_space(text, after + 1)
                return value + 1 if text[value:value + 1] == '"' else value  # "true" as a string
            i = end + 1
            continue
        depth += text[i] in "{["
        depth -= text[i] in "}]"
        if depth == 0:
            return None
        i += 1
    return None


def _string_end(text: str, i: int) -> int:
    """The index of the quote that closes the string opening at i (len(text) when it is cut off)."""
    j = i + 1
    while j < len(text) and text[j] != '"':
        j += 2 if text[j] == "\\" else 1
    return j


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _string_value(literal: str) -> str | None:
    try:
        return json.loads(literal)
    except json.JSONDecodeError:
        return None


def _token_at(logprobs, offset: int):
    position = 0
    for item in logprobs:
        position += len(item.token)
        if offset < position:
            return item
    return None


def _p_true(item) -> float | None:
    """P(true) / (P(true) + P(false)) over a token's alternatives (None when neither is among them)."""
    p_true = p_false = 0.0
    for tok, lp in (dict(item.top) or {item.token: item.logprob}).items():
        word = tok.strip(_AROUND_VALUE).lower()
        if word in _TRUE:
            p_true += math.exp(lp)
        elif word in _FALSE:
            p_false += math.exp(lp)
    return p_true / (p_true + p_false) if p_true + p_false > 0 else None


def choose_score(answer: ParsedAnswer, logprobs, expert_score: float | None) -> tuple[float | None, str]:
    """The most informative continuous score available, and where it came from."""
    if answer.anomalous is None:
        return None, "none"
    from_logprobs = logprob_score(logprobs)
    if from_logprobs is not None:
        return from_logprobs, "logprobs"
    if answer.confidence is not None:
        confidence = answer.confidence
        if (confidence < 0.5) == answer.anomalous and confidence != 0.5:
            confidence = 1.0 - confidence  # the model rated its sureness in its own verdict
        return confidence, "confidence"
    if expert_score is not None:
        return float(expert_score), "expert"
    return (1.0 if answer.anomalous else 0.0), "verdict"


def read_answer(text: str) -> tuple[ParsedAnswer | None, VerdictParseError | None]:
    """(answer, None) when the reply holds a readable verdict, else (None, the parse error)."""
    try:
        return parse_answer(text), None
    except VerdictParseError as error:
        return None, error


def build_verdict(turn, backend, reply, answer: ParsedAnswer | None, error: Exception | None) -> Verdict:
    """The Verdict of an analysis turn from the model's reply: parsed, or unparsed with the error.

    The score comes from choose_score; an anomalous answer without a box gets the expert's strongest region.
    """
    common = _common_fields(turn, backend)
    if error is not None or answer is None:
        return Verdict(anomalous=None, score=None, score_source="none", reasoning=reply.text[:4000], parsed=False,
                       parse_error=str(error), usage=dict(reply.usage), **common)
    evidence_score = turn.evidence.score if turn.evidence is not None else None
    score, source = choose_score(answer, reply.logprobs, evidence_score)
    location, regions = answer.location, common["regions"]
    if not location.get("box") and answer.anomalous and regions:
        box = regions[0].get("box")  # a series window has times, not a box
        location = {"box": list(box) if box else None, "where": location.get("where") or regions[0]["where"]}
    return Verdict(anomalous=answer.anomalous, score=score, score_source=source, reasoning=answer.reasoning,
                   defect_type=answer.defect_type, location=location, rules_used=answer.rules_used,
                   usage=dict(reply.usage), **common)


def _common_fields(turn, backend) -> dict:
    return {"class_name": turn.class_name, "strategy": turn.strategy.name, "backend": backend.name,
            "model": backend.model, "prompt_version": PROMPT_VERSION, "notes": list(turn.notes),
            "regions": turn.evidence.region_dicts() if turn.evidence is not None else []}
