"""The score each result is ranked by for AUROC/AUPR: every item ranked, one kind of score per strategy.

Why: a model that refuses the hard anomalies must not rank better than one that answers them, and a
stated confidence (0.95) is not comparable with a token probability (0.7) or the vision expert's
calibrated score. So:

- The strategy's ranked source is the most common score source among its answered items (ties go
  to the first of SOURCES), one source for every class, the mean and the pooled figures.
- An item whose score came from that source is ranked by it.
- An answered item whose score came from another source keeps only its verdict's side of the
  decision threshold, with the least strength: just above 0.5 when called anomalous, just below
  when called normal (its own number is on another scale, so it is not compared).
- An item without a verdict (undecided, unparsed, error) gets the uninformative 0.5. Every score
  source here puts the decision threshold at 0.5 (P(anomalous) from logprobs or confidence, the
  expert's calibrated score, the verdict's 1/0), so 0.5 says "cannot tell" on each of them. The class
  prior would be the other candidate, but it is computed from the very labels being scored and our
  scores are not calibrated probabilities, so it would place the item arbitrarily and leak the labels.

"answered only" figures rank the answered items alone (the same scores), reported beside, labelled.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

SOURCES = ("logprobs", "confidence", "expert", "verdict")  # preference order for ties
MIX = (*SOURCES, "none")  # "none": no verdict, so no score
UNINFORMATIVE = 0.5
JUST_ABOVE = float(np.nextafter(0.5, 1.0))
JUST_BELOW = float(np.nextafter(0.5, 0.0))


def answered(row: dict) -> bool:
    """A parsed, decided verdict (status ok)."""
    return row["status"] == "ok" and row.get("anomalous") is not None


def source_of(row: dict) -> str:
    """logprobs | confidence | expert | verdict (1/0 from the verdict alone) | none (no verdict)."""
    if not answered(row) or row.get("score") is None:
        return "none"
    source = row.get("score_source") or "none"
    return "verdict" if source == "none" else source  # results written before 'verdict' had its own name


def source_mix(rows: list[dict]) -> dict[str, int]:
    """How many items have each score source (every source listed, zeros included)."""
    counts = Counter(source_of(r) for r in rows)
    return {source: counts.get(source, 0) for source in MIX}


def ranked_source(rows: list[dict]) -> str | None:
    """The most common score source among the answered items (None when nothing was answered)."""
    counts = Counter(s for s in map(source_of, rows) if s != "none")
    order = {source: i for i, source in enumerate(SOURCES)}
    return max(counts, key=lambda s: (counts[s], -order.get(s, len(SOURCES))), default=None)


def ranking_score(row: dict, source: str | None) -> float:
    """The value this item is ranked by when the group is ranked over `source` (see the module docstring)."""
    if source is not None and source_of(row) == source:
        return float(row["score"])
    if answered(row):
        return JUST_ABOVE if row["anomalous"] else JUST_BELOW
    return UNINFORMATIVE


def labels_and_scores(rows: list[dict], source: str | None) -> tuple[list[int], list[float]]:
    """The labels and ranking scores of these rows, in order (for metrics and ROC curves)."""
    return [int(r["label"]) for r in rows], [ranking_score(r, source) for r in rows]


def ranking_metrics(labels: list[int], scores: list[float]) -> tuple[float | None, float | None, str | None]:
    """(AUROC, AUPR, None), or (None, None, reason) when the items do not have both labels."""
    if not labels:
        return None, None, "no item to rank"
    if len(set(labels)) < 2:
        only = "anomalous" if labels[0] else "normal"
        return None, None, f"only {only} items (AUROC needs both labels)"
    from sklearn.metrics import average_precision_score, roc_auc_score

    return float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores)), None


def ranked_figures(rows: list[dict], source: str | None) -> dict:
    """All-items AUROC/AUPR, the answered-only figures beside them, the source mix and how items were scored."""
    auroc, aupr, note = ranking_metrics(*labels_and_scores(rows, source))
    mix = source_mix(rows)
    return {"auroc": auroc, "aupr": aupr, "auroc_note": note, "ranked_source": source, "score_sources": mix,
            "scored": mix.get(source, 0) if source else 0,  # ranked by their own score
            "mapped": sum(v for k, v in mix.items() if k not in ("none", source)), "neutral": mix["none"],
            "answered_only": answered_only(rows, source)}


def answered_only(rows: list[dict], source: str | None) -> dict:
    """ACC, AUROC and AUPR over the answered items alone (what the figures would be if refusals were dropped)."""
    kept = [r for r in rows if answered(r)]
    correct = sum(bool(r["anomalous"]) == bool(r["label"]) for r in kept)
    auroc, aupr, note = ranking_metrics(*labels_and_scores(kept, source))
    return {"n": len(kept), "acc": correct / len(kept) if kept else None, "auroc": auroc, "aupr": aupr,
            "auroc_note": note}


def mean_answered_only(per_class: dict[str, dict]) -> dict:
    """The unweighted mean over classes of each answered-only figure, where it is defined."""
    mean: dict = {}
    for metric in ("acc", "auroc", "aupr"):
        values = [m["answered_only"][metric] for m in per_class.values() if m["answered_only"][metric] is not None]
        mean[metric] = float(np.mean(values)) if values else None
        mean[f"{metric}_classes"] = len(values)
    return mean


def csv_cells(values: dict) -> dict:
    """The answered-only figures and the score-source mix as flat metrics.csv cells."""
    answered_figures = values.get("answered_only") or {}
    cells = {f"answered_{k}": answered_figures.get(k) for k in ("n", "acc", "auroc", "aupr")}
    cells["ranked_source"] = values.get("ranked_source")
    cells.update({f"source_{k}": v for k, v in (values.get("score_sources") or {}).items()})
    return cells


CSV_FIELDS = ["answered_n", "answered_acc", "answered_auroc", "answered_aupr", "ranked_source",
              *(f"source_{k}" for k in MIX), "mapped", "neutral"]
