"""Pixel-level figures for organised point clouds, measured in the sensor grid where the masks are.

The 3-D expert's per-point map of an organised scan (MVTec 3D-AD xyz TIFF) is also a per-cell map
of the sensor grid, the frame of the ground-truth masks. Each result row keeps a compact histogram
of the map's scores over the cells that hold a point, split by the mask (defect / not defect), so
the pooled pixel AUROC over all items is exact up to the bin width and a resumed run needs no maps.
Boxes drawn on a rendered view are never compared with sensor-grid masks: the box hit of a point
cloud uses the region's box in the grid.
"""

from __future__ import annotations

import numpy as np

LOGIT_RANGE = 12.0  # scores are binned on the logit scale, where near-0 and near-1 scores stay apart
BINS = 1200


def _bins(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores.astype(np.float64), 1e-9, 1 - 1e-9)
    logit = np.clip(np.log(clipped / (1 - clipped)), -LOGIT_RANGE, LOGIT_RANGE)
    return np.minimum(((logit + LOGIT_RANGE) / (2 * LOGIT_RANGE) * BINS).astype(np.int64), BINS - 1)


def cell_histograms(grid_map: np.ndarray, mask: np.ndarray | None) -> dict | None:
    """{"defect": {bin: count}, "normal": {bin: count}} over the cells with a point (finite map values)."""
    scored = np.isfinite(grid_map)
    if mask is None:
        mask = np.zeros(grid_map.shape, bool)
    if mask.shape != grid_map.shape:
        return None  # a mask of another size cannot be matched cell by cell
    result = {}
    for name, chosen in (("defect", scored & mask), ("normal", scored & ~mask)):
        bins, counts = np.unique(_bins(grid_map[chosen]), return_counts=True)
        result[name] = {str(int(b)): int(c) for b, c in zip(bins, counts, strict=True)}
    return result


def pooled_auroc(histograms: list[dict]) -> float | None:
    """AUROC of defect cells against normal cells over all histograms (ties count one half); None without both."""
    defect, normal = np.zeros(BINS), np.zeros(BINS)
    for found in histograms:
        for name, target in (("defect", defect), ("normal", normal)):
            for b, count in found.get(name, {}).items():
                target[int(b)] += count
    if defect.sum() == 0 or normal.sum() == 0:
        return None
    below = np.cumsum(normal) - normal  # normal cells in lower bins
    wins = (defect * (below + 0.5 * normal)).sum()
    return float(wins / (defect.sum() * normal.sum()))


def grid_box_hit(regions: list[dict], mask: np.ndarray | None) -> bool | None:
    """Whether the strongest region's box in the sensor grid covers a defect cell; None without a box or mask."""
    box = next((r.get("grid_box") for r in regions if r.get("grid_box")), None)
    if box is None or mask is None or not mask.any():
        return None
    height, width = mask.shape
    x0, y0, x1, y1 = box
    rows = slice(int(np.floor(y0 * height)), int(np.ceil(y1 * height)))
    cols = slice(int(np.floor(x0 * width)), int(np.ceil(x1 * width)))
    return bool(mask[rows, cols].any())
