"""Pixel-level AUROC of the vision expert's heatmaps, from per-item histograms.

A result record cannot hold a heatmap, so each image item stores two histograms of its heatmap
values: over the defect pixels of its mask and over the other pixels (all of them for a normal
item). Histograms add up, so the pixel AUROC of a class, or of everything pooled, comes from the
summed histograms, also for a run resumed from results.jsonl. The bins are on the logit of the
heatmap value (the expert's 0..1 score is a logistic function of the distance ratio, so equal
bins are equal steps of the ratio); pixels in the same bin count as ties.
"""

from __future__ import annotations

import numpy as np

BINS = 200
LOGIT_RANGE = 10.0  # logits beyond +-10 (heatmap values within 5e-5 of 0 or 1) share the end bins


def histograms(heatmap: np.ndarray, mask: np.ndarray | None) -> dict[str, list[int]]:
    """{"defect": counts, "normal": counts} of the heatmap's values; `mask` None means no defect pixel."""
    values = np.clip(np.asarray(heatmap, np.float64), 1e-9, 1 - 1e-9)
    logits = np.log(values / (1 - values))
    index = np.clip(((logits + LOGIT_RANGE) / (2 * LOGIT_RANGE) * BINS).astype(np.int64), 0, BINS - 1)
    defect = np.zeros(index.shape, bool) if mask is None else fit_mask(mask, index.shape)
    return {"defect": np.bincount(index[defect], minlength=BINS).tolist(),
            "normal": np.bincount(index[~defect], minlength=BINS).tolist()}


def fit_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A boolean mask brought to the heatmap's shape (nearest neighbour)."""
    if mask.shape == shape:
        return mask
    rows = np.minimum((np.arange(shape[0]) * mask.shape[0] / shape[0]).astype(int), mask.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) * mask.shape[1] / shape[1]).astype(int), mask.shape[1] - 1)
    return mask[np.ix_(rows, cols)]


def pixel_auroc(rows: list[dict]) -> float | None:
    """Pixel AUROC over the rows' histograms; None without both defect and normal pixels."""
    found = [r["pixels"] for r in rows if r.get("pixels")]
    if not found:
        return None
    defect = np.sum([p["defect"] for p in found], axis=0, dtype=np.float64)
    normal = np.sum([p["normal"] for p in found], axis=0, dtype=np.float64)
    if defect.sum() == 0 or normal.sum() == 0:
        return None
    below = np.concatenate([[0.0], np.cumsum(normal)[:-1]])  # normal pixels in lower bins
    wins = (defect * below).sum() + 0.5 * (defect * normal).sum()
    return float(wins / (defect.sum() * normal.sum()))
