"""ACC, AUROC and AUPR (anomaly = positive class) per class, as a mean over classes, and pooled.

Every result row has a `status`: ok (a parsed, decided verdict), undecided (parsed, but the answer
says it cannot decide), unparsed (the reply could not be read even after the repair request) or
error (the item could not be analysed, e.g. an unreadable file). None of them is dropped: how each
is scored is SCORING, printed in the report; the ranking rules are in assistant/evaluation/ranking.py.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from assistant.evaluation import ranking

METRICS = ("acc", "auroc", "aupr")
STATUSES = ("ok", "undecided", "unparsed", "error")
SCORING = (
    "Anomaly is the positive class (label 1). ACC is the share of all items whose verdict equals the label; "
    "undecided answers, unreadable (unparsed) replies and failed items count as wrong. AUROC and AUPR (average "
    "precision) rank every item, over one kind of score per strategy (its 'ranked source': the most common "
    "source among its answered items, one of logprobs, confidence = the model's stated confidence, expert = the "
    "vision expert's calibrated score, verdict = 1/0 from the verdict alone): an item scored by that source is "
    "ranked by its score; an answered item scored by another source keeps only its verdict's side of the 0.5 "
    "threshold (just above 0.5 when called anomalous, just below when called normal: 'mapped'); an item without "
    "a verdict gets 0.5, the uninformative value on every source's scale ('neutral'). 'Answered only' figures "
    "rank the answered items alone, with the same scores, and divide ACC by the answered items: they are shown "
    "beside the all-items figures and flatter a model that refuses hard items. A group whose items all have the "
    "same label has no AUROC/AUPR (null, with the reason). 'mean' averages the per-class figures over the classes "
    "where they are defined; 'pooled' ranks all items of all classes together."
)


def group_metrics(rows: list[dict], source: str | None = None) -> dict:
    """The metrics of one group of results (one class, or all classes pooled), ranked over `source`
    (default: the group's own most common score source)."""
    n = len(rows)
    positives = sum(int(r["label"]) for r in rows)
    correct = sum(r["status"] == "ok" and bool(r["anomalous"]) == bool(r["label"]) for r in rows)
    counts = Counter(r["status"] for r in rows)
    figures = ranking.ranked_figures(rows, source or ranking.ranked_source(rows))
    result = {"n": n, "n_anomalous": positives, "n_normal": n - positives, "acc": correct / n if n else None,
              **figures, "excluded": n - figures["answered_only"]["n"], "confusion": confusion(rows),
              **{s: counts.get(s, 0) for s in STATUSES[1:]}, "by_defect": by_defect(rows)}
    result.update(localisation(rows))
    windows = window_totals(rows)
    if windows:
        result["windows"] = windows
    return result


def confusion(rows: list[dict]) -> dict:
    """True/false positives and negatives among decided verdicts; the undecided ones per true label."""
    decided = [r for r in rows if r["status"] == "ok"]
    table = Counter((bool(r["label"]), bool(r["anomalous"])) for r in decided)
    no_verdict = Counter(bool(r["label"]) for r in rows if r["status"] != "ok")
    return {"tp": table[(True, True)], "fn": table[(True, False)], "fp": table[(False, True)],
            "tn": table[(False, False)], "no_verdict_anomalous": no_verdict[True], "no_verdict_normal": no_verdict[False]}


def by_defect(rows: list[dict]) -> dict:
    """Per defect kind: items, how many were called anomalous (recall for defects, false alarms for good)."""
    kinds: dict[str, dict] = {}
    for row in rows:
        entry = kinds.setdefault(row.get("defect") or "good", {"n": 0, "called_anomalous": 0})
        entry["n"] += 1
        entry["called_anomalous"] += int(row["status"] == "ok" and bool(row["anomalous"]))
    for entry in kinds.values():
        entry["rate"] = entry["called_anomalous"] / entry["n"]
    return dict(sorted(kinds.items()))


def localisation(rows: list[dict]) -> dict:
    """How often the verdict's box overlaps the ground-truth mask (anomalies called anomalous with a box; for
    scans the region's box in the sensor grid), and the pixel AUROC of the experts' maps where masks exist
    (assistant/evaluation/pixels.py), with how many items have a map."""
    from assistant.evaluation.pixels import pixel_auroc

    found = {}
    checked = [r["box_hit"] for r in rows if r.get("box_hit") is not None]
    if checked:
        found = {"boxes_checked": len(checked), "box_hits": int(sum(checked)), "box_hit_rate": sum(checked) / len(checked)}
    items = sum(1 for r in rows if r.get("pixels"))
    if items:
        found["pixel_items"] = items
    pixels = pixel_auroc(rows)
    return found if pixels is None else {**found, "pixel_auroc": pixels}


def window_totals(rows: list[dict]) -> dict:
    """Series: labelled windows hit and missed, and false alarms of the series expert, summed."""
    found = [r["series"] for r in rows if r.get("series")]
    if not found:
        return {}
    keys = ("labelled", "flagged", "hits", "missed", "false_alarms", "untimed_flags")
    return {k: int(sum(s.get(k, 0) for s in found)) for k in keys}


def mean_over_classes(per_class: dict[str, dict]) -> dict:
    """The unweighted mean of each metric over the classes where it is defined (all items, and answered only)."""
    mean: dict = {"classes": len(per_class), "n": sum(m["n"] for m in per_class.values())}
    for metric in METRICS:
        values = [m[metric] for m in per_class.values() if m[metric] is not None]
        mean[metric] = float(np.mean(values)) if values else None
        mean[f"{metric}_classes"] = len(values)
    mean["answered_only"] = ranking.mean_answered_only(per_class)
    return mean


def strategy_metrics(rows: list[dict]) -> dict:
    """{"per_class": {class: metrics}, "mean": {...}, "pooled": {...}} for one strategy's results."""
    classes = sorted({r["class"] for r in rows})
    source = ranking.ranked_source(rows)  # one kind of score for every class, the mean and the pooled figures
    per_class = {c: group_metrics([r for r in rows if r["class"] == c], source) for c in classes}
    pooled = group_metrics(rows, source)
    pooled["note"] = "pooled: all items of all classes ranked together"
    return {"per_class": per_class, "mean": mean_over_classes(per_class), "pooled": pooled}


def all_metrics(rows: list[dict], strategies: list[str]) -> dict:
    """Metrics for every strategy, in the order the strategies were given."""
    return {s: strategy_metrics([r for r in rows if r["strategy"] == s]) for s in strategies
            if any(r["strategy"] == s for r in rows)}


def box_hits_mask(box, mask_path) -> bool | None:
    """True when the normalised box (x0, y0, x1, y1) covers a defect pixel of the mask; None without data."""
    if not box or mask_path is None:
        return None
    mask = load_mask(mask_path)
    if mask is None or not mask.any():
        return None
    height, width = mask.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    cols = slice(int(np.floor(min(x0, x1) * width)), int(np.ceil(max(x0, x1) * width)) + 1)
    rows = slice(int(np.floor(min(y0, y1) * height)), int(np.ceil(max(y0, y1) * height)) + 1)
    return bool(mask[rows, cols].any())


def load_mask(path) -> np.ndarray | None:
    """A boolean mask from a mask file, or the union of the masks in a folder (MVTec LOCO)."""
    from pathlib import Path

    from PIL import Image

    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    masks = []
    for file in files:
        try:
            with Image.open(file) as image:
                masks.append(np.asarray(image.convert("L")) > 127)
        except OSError:
            continue
    if not masks:
        return None
    union = masks[0].copy()
    for mask in masks[1:]:
        if mask.shape == union.shape:
            union |= mask
    return union
