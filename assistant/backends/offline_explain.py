"""What the offline backend says after a verdict: follow-up answers that show the evidence.

"why?", "where exactly?" and "compare it with the reference" are answered in two steps, as a model
would answer them: first the show_regions tool (crops or a map of the strongest places, which the
chat shows), then an answer from the same figures (tools/agent/places.py): how far the query
deviates there relative to the variation among the reference normals, in the modality's terms, and
which rules name that part of the object. The rules, the score and anything else are answered from
the turn. An answer never contradicts the verdict it follows and never repeats its paragraph.
"""

from __future__ import annotations

import re
import uuid

from assistant.backends.base import ToolCall
from tools.agent.places import describe, deviation_text, has_places, places, rules_for_place
from tools.vocabulary import display_class

TOPICS = [  # in the order they are answered when a question asks several things
    ("why", re.compile(r"\b(why|reason\w*|explain\w*|how do you know|evidence|what makes)\b", re.I)),
    ("where", re.compile(r"\b(where|location|locate|region|regions|which part|area|exactly|spot)\b", re.I)),
    ("compare", re.compile(r"\b(compare\w*|reference\w*|side by side|normal look|what should|differ\w* from)\b", re.I)),
    ("rules", re.compile(r"\b(rule|rules|requirement\w*|spec)\b", re.I)),
    ("score", re.compile(r"\b(score|confiden\w*|sure|threshold|probability|certain)\b", re.I)),
]
PICTURES = {"why": ("crops", 1), "where": ("map", 3), "compare": ("crops", 3)}  # topic -> show_regions(view, count)
BELOW_THRESHOLD = {  # why nothing was flagged, by what the expert measured against (a region's "basis")
    "pictures": ("nowhere does the expert's distance reach its threshold, which is set above the largest difference "
                 "the reference normals show among themselves anywhere on the part."),
    "references": ("nowhere does the scan deviate from the aligned reference surface by its threshold, which is set "
                   "above the largest deviation the reference scans show among themselves at each place."),
    "self-check": ("nowhere does the surface stand out from the surface around it by the threshold (no reference "
                   "scan: the scan was checked against itself, which is weaker evidence)."),
}
WHERE_UNITS = {  # how "where exactly?" gives places, by the kind of region
    "pictures": "x and y as fractions of the image's width and height",
    "scan": "each region's centre and extent in the scan's own coordinates and units, and where the view shows it",
}
SHOWN = "show_regions"


def topics_of(question: str) -> list[str]:
    """The things a follow-up asks about, in answering order ('summary' when none is recognised)."""
    return [name for name, pattern in TOPICS if pattern.search(question or "")] or ["summary"]


def picture_calls(turn) -> list[ToolCall]:
    """The show_regions calls a follow-up needs before it is answered (none without evidence to show)."""
    wanted = dict.fromkeys(PICTURES[t] for t in topics_of(turn.question) if t in PICTURES)
    if not wanted or turn.verdict is None or not has_places(turn.evidence):
        return []
    return [ToolCall(f"call_{uuid.uuid4().hex[:8]}", SHOWN, {"view": view, "count": count}) for view, count in wanted]


def answer_follow_up(turn) -> str:
    """A follow-up answer grounded in the last analysis' evidence (after the pictures, if any were shown)."""
    if turn.verdict is None:
        return _nothing_inspected(turn)
    return "\n\n".join(ANSWERS[topic](turn, turn.verdict) for topic in topics_of(turn.question))


def _nothing_inspected(turn) -> str:
    if turn.notes:  # e.g. the last upload was refused: say so rather than answer about an earlier file
        return " ".join(turn.notes) + " Attach a file I can read and ask again."
    return ("I have not inspected anything in this conversation yet. Attach an image, point cloud, series or video "
            "and ask whether anything is wrong; or teach me a rule, e.g. \"rule for bottle: the rim must be a closed, "
            "even circle\".")


def _label(verdict) -> str:
    return verdict.label.upper()


def _why(turn, verdict) -> str:
    found = places(turn.evidence, 1)
    if verdict.anomalous is None or not found:
        return _why_without_places(turn, verdict)
    place = found[0]
    if place.region.get("kind") == "series_window":
        return _why_series(turn, verdict, place)
    if not place.beyond_threshold:
        text = (f"Why {_label(verdict)}: {BELOW_THRESHOLD[place.region.get('basis', 'pictures')]} The place "
                f"that differs most is {_named(place.region)}, below the 0.5 threshold")
        figures = deviation_text(place)
        text += f"; {figures}." if figures else "."
        beside = " beside the nearest reference normal" if turn.evidence.references else ""
        return text + f" The crops show it{beside}." + _contradiction(turn, verdict)
    where = _named(place.region) if _in_3d(place.region) else f"at {describe(place.region)}"
    text = f"Why {_label(verdict)}: the strongest deviation is {where}"
    figures = deviation_text(place)
    text += f"; {figures}." if figures else "."
    more = len(verdict.regions) - 1
    if more > 0:
        text += f" {more} further place(s) deviate less (ask \"where exactly?\")."
    return text + _place_rules(turn, place) + _contradiction(turn, verdict)


def _in_3d(region: dict) -> bool:
    return region.get("centre") is not None


def _named(region: dict) -> str:
    """A place in words, with an article where a 3-D region starts with its kind ('a dent at ...')."""
    countable = _in_3d(region) and region.get("kind") in ("dent", "bulge", "bump", "deviation")
    return ("a " if countable else "") + describe(region)


def _why_series(turn, verdict, place) -> str:
    text = (f"Why {_label(verdict)}: the strongest flagged window is {describe(place.region)}. The zoomed plot "
            "shows it against its expected band.")
    more = len(verdict.regions) - 1
    if more > 0:
        text += f" {more} further window(s) were flagged: ask \"where exactly?\" for all of them."
    return text + _place_rules(turn, place) + _contradiction(turn, verdict)


def _why_without_places(turn, verdict) -> str:
    if verdict.anomalous is None:
        reason = " ".join(turn.notes) or "there was no expert evidence to decide on"
        return f"It could not be decided: {reason}"
    if getattr(turn.evidence, "series", None) is not None:
        return (f"Why {_label(verdict)}: the series expert flagged no window: every stretch resembles another part of "
                f"the series and stays near its expected course (score {verdict.score:.2f}; 0.5 is the threshold)."
                + _contradiction(turn, verdict))
    return f"Why {_label(verdict)}: the verdict came without a place to point at." + _contradiction(turn, verdict)


def _place_rules(turn, place) -> str:
    """A paragraph with the rules that name the place, and those about the whole part (or series)."""
    named, whole = rules_for_place(turn.rules, place.region)
    parts = [f"Rules that name this part: {_rule_list(named)}."] if named else []
    if whole:
        series = place.region.get("kind") == "series_window"
        parts.append(("Rules for this series: " if series else "Rules about the whole part: ") + _rule_list(whole) + ".")
    if not parts:
        return ""
    parts.append("Check them in the picture: the offline backend measures deviations, it does not read rules.")
    return "\n\n" + " ".join(parts)


def _rule_list(rules, limit: int = 4) -> str:
    """'[id] first sentence' per rule (a long seed rule is cut after its first sentence)."""
    shown = [f"[{r.id}] {_first_sentence(r.text)}" for r in rules[:limit]]
    more = f"; and {len(rules) - limit} more" if len(rules) > limit else ""
    return "; ".join(shown) + more


def _first_sentence(text: str, limit: int = 140) -> str:
    sentence = re.split(r"(?<=[.!?:])\s", text.strip(), maxsplit=1)[0].rstrip(".:; ")
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


def _contradiction(turn, verdict) -> str:
    """A sentence when the verdict (e.g. a model's, before the backend changed) and the expert disagree."""
    report = getattr(turn.evidence, "expert", None) or getattr(turn.evidence, "series", None)
    if report is None or verdict.anomalous is None or bool(report.anomalous) == bool(verdict.anomalous):
        return ""
    expert = "anomalous" if report.anomalous else "within the normal range"
    return (f" Note: the verdict came from {verdict.backend or 'the model'}; the expert alone judged the part {expert} "
            f"(score {report.score:.2f}).")


def _where(turn, verdict) -> str:
    found = places(turn.evidence, 8) if turn.evidence is not None else []
    if found and found[0].region.get("kind") == "series_window":
        return "Flagged windows of the series, strongest first:\n" + "\n".join(f"- {describe(p.region)}" for p in found)
    if getattr(turn.evidence, "series", None) is not None:
        return ("The series expert flagged no window: every stretch resembles another part of the series and stays "
                "near its expected course.")
    if not found:
        return "There is no place to point at: the experts had no evidence for this verdict."
    if not found[0].beyond_threshold:
        return ("Nothing reaches the expert's threshold, so there is no defect to locate. The place "
                f"that differs most is {_named(found[0].region)} (below the 0.5 threshold), outlined in the map.")
    lines = [f"{p.number}. {describe(p.region)}" for p in found]
    units = WHERE_UNITS["scan" if _in_3d(found[0].region) else "pictures"]
    return f"Where, strongest first ({units}; numbered in the map):\n" + "\n".join(lines)


def _compare(turn, verdict) -> str:
    evidence = turn.evidence
    if getattr(evidence, "series", None) is not None:
        return ("A series is judged against itself (its expected course and the rest of the series), not against "
                "stored reference normals; the zoomed plots show each flagged window against its expected band.")
    if evidence is None or not evidence.references:
        return "There was no reference normal to compare with in the last inspection."
    text = (f"Compared with {len(evidence.references)} reference normal(s); the nearest is "
            f"{_reference_words(evidence.nearest)}.")
    found = places(evidence, 3)
    if not found:
        return text
    text += " The crops put the query and the nearest reference side by side at the same place:"
    for place in found:
        figures = deviation_text(place) or "no figures for this place"
        state = "" if place.beyond_threshold else " (below the threshold)"
        text += f"\n{place.number}. {place.region.get('where', 'the place')}{state}: {figures}"
    return text


def _reference_words(reference) -> str:
    """A reference normal as a person knows it: who stored it and when (or the file given with the question)."""
    sample = reference.sample
    if sample is None:
        return reference.label.replace("reference ", "the file ", 1)
    return f"the one {sample.author} stored on {sample.created_at[:16].replace('T', ' ')} UTC"


def _rules(turn, verdict) -> str:
    if not turn.rules:
        name = display_class(turn.class_name) if turn.class_name else None
        return f"No rules are stored for {name or 'this class'}. Teach one: \"rule for {name or 'CLASS'}: ...\"."
    return "Rules used for this inspection:\n" + "\n".join(f"- [{r.id}] ({r.kind}) {r.text}" for r in turn.rules)


def _score(turn, verdict) -> str:
    if verdict.score is None:
        return "There is no score: the last inspection could not be decided."
    evidence = turn.evidence
    basis = ("the series' own expected course" if getattr(evidence, "series", None) is not None
             else "the scan's own surroundings (no reference scan: weaker evidence)" if _self_check(evidence)
             else "the reference normals")
    return (f"Score {verdict.score:.2f} (source: {verdict.score_source}); 0.5 is the decision threshold, calibrated on "
            f"{basis}, so the verdict is {verdict.label}.")


def _self_check(evidence) -> bool:
    """Whether the evidence is the 3-D expert's check of a scan against itself (no reference scan)."""
    return getattr(getattr(evidence, "expert", None), "evidence", None) == "self-check"


def _summary(turn, verdict) -> str:
    score = f"{verdict.score:.2f}" if verdict.score is not None else "n/a"
    return (f"Last verdict: {verdict.label} (score {score}). Ask me why, where exactly, to compare it with the "
            "reference, which rules apply, or how sure I am.")


ANSWERS = {"why": _why, "where": _where, "compare": _compare, "rules": _rules, "score": _score, "summary": _summary}
