"""What the offline backend says in a verdict, built only from the evidence (follow-ups: offline_explain.py)."""

from __future__ import annotations

from tools.vocabulary import display_class, split_rules

# The rules a verdict says it checked. The offline backend cannot look at the picture, and the vision
# expert compares with reference normals, not with rules, so no rule is ever checked: none is claimed.
CHECKED_RULES: list[str] = []


def _expert_reasoning(turn, report) -> str:
    if hasattr(report, "explain"):  # an expert that explains its own method (the 3-D expert)
        return report.explain(display_class(turn.class_name) if turn.class_name else "part")
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
    confirmed = (" when nothing elsewhere in the series comes close either (the first rows are judged from the rows "
                 "after them)" if report.mode == "offline" else "")
    parts = [f"The series expert ({report.mode} mode) judged {columns}: a stretch unlike anything before it, or a "
             f"value beyond everything before it, is flagged{confirmed}."]
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
        "defect_type": _defect_type(top, is_series) if report.anomalous else "none",
        "location": {"box": list(top.box) if top else None, "where": where},
        "rules_used": list(CHECKED_RULES),
    }


def _defect_type(top, is_series: bool) -> str:
    """The kind the expert names for its strongest region (the 3-D expert: dent, bulge, ...), else a generic one."""
    return getattr(top, "kind", None) or ("abnormal behaviour" if is_series else "deviation from normal")


def _first_window(report) -> str:
    """The strongest flagged window of a series, in its own terms (empty when none)."""
    regions = report.regions() if report.anomalous else []
    return regions[0]["where"] if regions else ""
