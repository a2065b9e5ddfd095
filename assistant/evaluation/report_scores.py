"""report.md sections about how the figures are scored: the answered-only figures beside the all-items
ones, the score-source mix per class, the knowledge the prompts used, and how each number is computed."""

from __future__ import annotations

from assistant.evaluation.metrics import METRICS, SCORING
from assistant.evaluation.ranking import MIX
from assistant.evaluation.tables import fmt, row

# Xu et al., 2024, "Customizing Visual-Language Foundation Models for Multi-modal Anomaly Detection and
# Reasoning", arXiv:2403.11083 (v1, March 2024); the figures are report.PAPER_MEANS.
PAPER_SOURCE = "Xu et al. 2024, arXiv:2403.11083, Table I: means over the 15 MVTec AD classes"
PAPER_NOTE = (f"The paper rows are published figures ({PAPER_SOURCE}), not measured here. How the paper scored "
              "answers without a verdict could not be checked here, so compare them with both our all-items and our "
              "answered-only figures. The paper's per-class figures are not reproduced here.")
COMPUTED = [
    "ACC: correct verdicts / all items of the group (no verdict = wrong). Answered only: correct / answered items.",
    "AUROC: sklearn roc_auc_score over every item's ranking score (ties count one half). AUPR: sklearn "
    "average_precision_score (average precision, the step-wise area under the precision-recall curve), anomaly "
    "= positive class. Answered only: the same over the answered items.",
    "Ranking score: see the paragraph above (one ranked source per strategy; 'mapped' items keep their "
    "verdict's side of 0.5, 'neutral' items without a verdict get 0.5).",
    "mean over classes: the unweighted mean of the per-class figures over the classes where they are defined; "
    "pooled: every item of every class ranked together (one ranked source, so the scales agree).",
    "--limit N keeps each class's share of anomalies (stratified, seeded), so AUPR stays comparable with the full set.",
    "Results are reused from results.jsonl only when item, strategy, backend, model, prompt version, reference "
    "setup and the knowledge fingerprint (the class's rules, expert settings and reference pool) all match.",
]


def answered_only(table: dict) -> str:
    """The figures over the answered items alone, labelled, beside the all-items means."""
    header = ["strategy", "all items: mean ACC", "AUROC", "AUPR", "answered only: mean ACC", "AUROC", "AUPR",
              "answered / n (pooled)"]
    lines = ["## Answered items only (for comparison; the tables above rank every item)", "", row(header),
             row(["---"] * len(header))]
    for strategy, result in table.items():
        mean, only = result["mean"], result["mean"]["answered_only"]
        pooled = result["pooled"]
        lines.append(row([strategy] + [fmt(mean[m]) for m in METRICS] + [fmt(only[m]) for m in METRICS]
                         + [f"{pooled['answered_only']['n']} / {pooled['n']}"]))
    return "\n".join(lines)


def score_sources(table: dict) -> str:
    """Per strategy and class: the ranked source and how many items have each score source."""
    header = ["strategy", "class", "ranked source", *MIX, "mapped", "neutral (0.5)"]
    lines = ["## Score sources per class", "", "How many items have each score source (none = no verdict); the "
             "ranking uses the ranked source only.", "", row(header), row(["---"] * len(header))]
    for strategy, result in table.items():
        for name, values in [*result["per_class"].items(), ("**pooled**", result["pooled"])]:
            mix = values["score_sources"]
            lines.append(row([strategy, name, values["ranked_source"] or "–", *(mix[k] for k in MIX),
                              values["mapped"], values["neutral"]]))
    return "\n".join(lines)


def knowledge(info: dict) -> str:
    """The knowledge fingerprint of each class (what the cache key holds)."""
    prints = info.get("knowledge_fingerprints") or {}
    if not prints:
        return ""
    lines = ["## Knowledge used", "", f"Fingerprint of all classes: `{info.get('knowledge_fingerprint')}`. Per "
             "class (rules, expert settings and reference pool):", ""]
    lines += [f"- {name}: `{value}`" for name, value in prints.items()]
    return "\n".join(lines)


def how_computed() -> str:
    """How each number of the report is computed."""
    return "\n".join(["## How each number is computed", "", SCORING, "", *(f"- {line}" for line in COMPUTED)])
