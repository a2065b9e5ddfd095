"""What the offline backend says: verdicts and follow-up answers built only from the evidence."""

from __future__ import annotations

import re


def _rule_ids(turn) -> list[str]:
    return [r.id for r in turn.rules]


def _expert_reasoning(turn, report) -> str:
    if hasattr(report, "explain"):  # an expert that explains its own method (the 3-D expert)
        return report.explain(turn.class_name or "part")
    evidence = turn.evidence
    refs = len(evidence.references)
    subject = turn.class_name or "object"
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
    return report.summary()


def _rules_sentence(turn) -> str:
    if not turn.rules:
        return ""
    listed = "; ".join(f"[{r.id}] {r.text.rstrip('. ')}" for r in turn.rules[:4])
    return (f" Rules for {turn.class_name or 'this input'}: {listed}. The offline backend cannot read these rules in "
            "the picture; check them where the expert points.")


def verdict_json(turn) -> dict:
    """The verdict JSON (the same keys a model is asked for) from the experts' evidence."""
    evidence = turn.evidence
    report = getattr(evidence, "expert", None) or getattr(evidence, "series", None)
    if report is None:
        reasoning = ("No expert evidence is available (no reference normal to compare with), so the offline "
                     "backend cannot decide. Add a reference normal for this class, or use a VLM backend.")
        return {"reasoning": reasoning + _rules_sentence(turn), "anomalous": None, "confidence": None,
                "defect_type": "unknown", "location": {"box": None, "where": ""}, "rules_used": _rule_ids(turn)}
    is_series = getattr(evidence, "expert", None) is None
    reasoning = (_series_reasoning if is_series else _expert_reasoning)(turn, report)
    regions = getattr(report, "regions", []) or []
    top = regions[0] if regions and report.anomalous else None
    return {
        "reasoning": reasoning + _rules_sentence(turn),
        "anomalous": bool(report.anomalous),
        "confidence": None,  # the score is the expert's own; the session records it as such
        "defect_type": (getattr(top, "kind", None) or ("deviation from normal" if not is_series else "abnormal behaviour"))
        if report.anomalous else "none",
        "location": {"box": list(top.box) if top else None, "where": top.where if top else ""},
        "rules_used": _rule_ids(turn),
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


def _where(turn, verdict) -> str:
    if not verdict.regions:
        return "The expert found no region that deviates beyond normal variation."
    lines = [f"- {_kind(r)}{r['where']}: {r['area']:.1%} of the image, peak {r['peak']:.2f}, box {_box(r['box'])}"
             for r in verdict.regions[:5]]
    return "Deviating regions, strongest first:\n" + "\n".join(lines)


def _kind(region: dict) -> str:
    """'dent 0.8 deep, ' for a 3-D expert's region (depth in the scan's units), else nothing."""
    if "kind" not in region:
        return ""
    depth = f" {abs(region['depth']):.3g} {'deep' if region['depth'] < 0 else 'high'}" if region.get("depth") else ""
    return f"{region['kind']}{depth}, "


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
        return f"No rules are stored for {turn.class_name or 'this class'}. Teach one: \"rule for {turn.class_name or 'CLASS'}: ...\"."
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
