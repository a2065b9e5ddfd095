"""What the offline backend says: verdicts and follow-up answers built only from the evidence."""

from __future__ import annotations

import re

from tools.vocabulary import display_class, split_rules

# The rules a verdict says it checked. The offline backend cannot look at the picture, and the vision
# expert compares with reference normals, not with rules, so no rule is ever checked: none is claimed.
CHECKED_RULES: list[str] = []


def _expert_reasoning(turn, report) -> str:
    evidence = turn.evidence
    refs = len(evidence.references)
    subject = display_class(turn.class_name) if turn.class_name else "object"
    parts = [f"The vision expert compared the query {subject} patch by patch with {refs} reference normal(s)."]
    if refs:
        nearest = evidence.references[min(report.nearest_reference, refs - 1)]
        parts.append(f"The closest reference is {nearest.label}.")
    parts.append(f"Its anomaly score is {report.score:.2f} (0.5 is the threshold calibrated on the references).")
    if report.anomalous and report.regions:
        top = report.regions[0]
        parts.append(f"Strongest deviation: {top.where}, covering {top.area:.1%} of the image "
                     f"(peak {top.peak:.2f}); the part there differs from every reference.")
        if len(report.regions) > 1:
            parts.append(f"{len(report.regions) - 1} further region(s) deviate less.")
    elif not report.anomalous:
        parts.append("No region differs from the references by more than their normal variation.")
    return " ".join(parts)


def _series_reasoning(turn, report) -> str:
    columns = ", ".join(report.periods) or "its columns"
    parts = [f"The series expert ({report.mode} mode) judged {columns} against the rest of the series: a stretch "
             "unlike any other, or values outside the expected band, is flagged."]
    parts.append(report.summary())
    if not report.anomalous:
        parts.append("Every stretch resembles another part of the series and stays near its expected course.")
    return "\n".join(parts)


def _rules_sentence(turn) -> str:
    """The rules listed for the person to check (own rules, or rules of related classes, labelled so)."""
    if not turn.rules:
        return ""
    own = split_rules(turn.rules, turn.class_name)[0]
    subject = display_class(turn.class_name) if turn.class_name else "this input"
    if own:
        listed = "; ".join(f"[{r.id}] {r.text.rstrip('. ')}" for r in own[:4])
        heading = f"Rules for {subject}: {listed}."
    else:
        listed = "; ".join(f"[{r.id}] ({display_class(r.class_name)}) {r.text.rstrip('. ')}" for r in turn.rules[:4])
        heading = f"No rules are stored for {subject}; rules of related classes: {listed}."
    return f" {heading} The offline backend cannot read rules in the picture; check them where the expert points."


def verdict_json(turn) -> dict:
    """The verdict JSON (the same keys a model is asked for) from the experts' evidence."""
    evidence = turn.evidence
    report = getattr(evidence, "expert", None) or getattr(evidence, "series", None)
    if report is None:
        reasoning = ("No expert evidence is available (no reference normal to compare with), so the offline "
                     "backend cannot decide. Add a reference normal for this class, or use a VLM backend.")
        return {"reasoning": reasoning + _rules_sentence(turn), "anomalous": None, "confidence": None,
                "defect_type": "unknown", "location": {"box": None, "where": ""}, "rules_used": list(CHECKED_RULES)}
    is_series = getattr(evidence, "expert", None) is None
    reasoning = (_series_reasoning if is_series else _expert_reasoning)(turn, report)
    regions = [] if is_series else report.regions
    top = regions[0] if regions and report.anomalous else None
    where = (_first_window(report) if is_series else top.where if top else "")
    return {
        "reasoning": reasoning + _rules_sentence(turn),
        "anomalous": bool(report.anomalous),
        "confidence": None,  # the score is the expert's own; the session records it as such
        "defect_type": ("deviation from normal" if not is_series else "abnormal behaviour") if report.anomalous else "none",
        "location": {"box": list(top.box) if top else None, "where": where},
        "rules_used": list(CHECKED_RULES),
    }


_TOPICS = [
    (re.compile(r"\b(where|location|region|which part|area)\b", re.I), "where"),
    (re.compile(r"\b(compare|compared|reference|normal look|what should)\b", re.I), "compare"),
    (re.compile(r"\b(rule|rules|requirement|spec)\b", re.I), "rules"),
    (re.compile(r"\b(score|confiden\w*|sure|threshold|probability|certain)\b", re.I), "score"),
    (re.compile(r"\b(why|reason|explain|how do you know|evidence)\b", re.I), "why"),
]


def answer_follow_up(turn) -> str:
    """A follow-up answer grounded in the last analysis' evidence."""
    verdict = turn.verdict
    if verdict is None:
        return ("I have not inspected anything in this conversation yet. Attach an image, point cloud, series or "
                "video and ask whether anything is wrong; or teach me a rule, e.g. \"rule for bottle: the rim must "
                "be a closed, even circle\".")
    topic = next((name for pattern, name in _TOPICS if pattern.search(turn.question)), "summary")
    return _ANSWERS[topic](turn, verdict)


def _first_window(report) -> str:
    """The strongest flagged window of a series, in its own terms (empty when none)."""
    regions = report.regions() if report.anomalous else []
    return regions[0]["where"] if regions else ""


def _where(turn, verdict) -> str:
    windows = [r for r in verdict.regions if r.get("kind") == "series_window"]
    if windows or getattr(turn.evidence, "series", None) is not None:
        return _where_in_series(windows)
    if not verdict.regions:
        return "The expert found no region that deviates beyond normal variation."
    lines = [f"- {r['where']}: {r['area']:.1%} of the image, peak {r['peak']:.2f}, box {_box(r['box'])}"
             for r in verdict.regions[:5]]
    return "Deviating regions, strongest first:\n" + "\n".join(lines)


def _where_in_series(windows: list[dict]) -> str:
    if not windows:
        return ("The series expert flagged no window: every stretch resembles another part of the series and stays "
                "near its expected course.")
    lines = []
    for w in windows[:8]:
        line = f"- {w['where']}"
        if w.get("peak_value") is not None and w.get("expected_low") is not None:
            line += (f": peak {w['peak_value']:.4g} (row {w['peak_row']}) where {w['expected_low']:.4g} to "
                     f"{w['expected_high']:.4g} was expected")
        lines.append(line + f", score {w['score']:.2f}")
    more = f"\n({len(windows) - 8} more window(s) in the JSON output)" if len(windows) > 8 else ""
    return "Flagged windows of the series, strongest first:\n" + "\n".join(lines) + more


def _box(box) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in box) + ")"


def _compare(turn, verdict) -> str:
    evidence = turn.evidence
    if evidence is None or not evidence.references:
        return "There was no reference normal to compare with in the last inspection."
    labels = ", ".join(r.label for r in evidence.references)
    report = evidence.expert
    closest = evidence.references[min(report.nearest_reference, len(evidence.references) - 1)].label if report else ""
    nearest = f" The closest was {closest}." if report and len(evidence.references) > 1 else ""
    return f"I compared the query with {labels}.{nearest} The composite shows reference | query | heatmap."


def _rules(turn, verdict) -> str:
    if not turn.rules:
        name = display_class(turn.class_name) if turn.class_name else None
        return f"No rules are stored for {name or 'this class'}. Teach one: \"rule for {name or 'CLASS'}: ...\"."
    return "Rules used for this inspection:\n" + "\n".join(f"- [{r.id}] ({r.kind}) {r.text}" for r in turn.rules)


def _score(turn, verdict) -> str:
    if verdict.score is None:
        return "There is no score: the last inspection could not be decided."
    return (f"Score {verdict.score:.2f} (source: {verdict.score_source}); 0.5 is the decision threshold calibrated "
            f"on the reference normals, so the verdict is {verdict.label}.")


def _why(turn, verdict) -> str:
    return f"Verdict: {verdict.label}. {verdict.reasoning}"


def _summary(turn, verdict) -> str:
    return (f"Last verdict: {verdict.label} (score {verdict.score if verdict.score is not None else 'n/a'}). "
            "Ask me why, where, what it was compared with, which rules apply, or how sure I am.")


_ANSWERS = {"where": _where, "compare": _compare, "rules": _rules, "score": _score, "why": _why, "summary": _summary}
