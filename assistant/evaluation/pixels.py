"""Pixel-level localisation figures from per-item histograms: pictures in their pixels, scans in their sensor grid.

A result record cannot hold a map, so each item stores two histograms of its expert's map: over
the defect pixels of its mask and over the other pixels (all of them for a normal item).
Histograms add up, so the pixel AUROC of a class, or of everything pooled, comes from the summed
histograms, also for a run resumed from results.jsonl. The bins are on the logit of the map value
(each expert's 0..1 score is a logistic function of its distance ratio, so equal bins are equal
steps of the ratio); pixels in the same bin count as ties.

Two routes, one per kind of item (ROUTES):
- image: the vision expert's heatmap, over the image's pixels (the mask brought to its size).
- point_cloud: the 3-D expert's per-point map of an organised scan (MVTec 3D-AD xyz TIFF) is a
  per-cell map of the sensor grid, the frame of the ground-truth masks; only cells that hold a
  point count, and a box hit means the strongest region's box in the grid covers a defect cell.
  Boxes drawn on a rendered view are never compared with sensor-grid masks.
"""

from __future__ import annotations

import numpy as np

BINS = 200
LOGIT_RANGE = 10.0  # logits beyond +-10 (map values within 5e-5 of 0 or 1) share the end bins


def histograms(heatmap: np.ndarray, mask: np.ndarray | None) -> dict[str, list[int]]:
    """{"defect": counts, "normal": counts} of the heatmap's values; `mask` None means no defect pixel."""
    heatmap = np.asarray(heatmap, np.float64)
    defect = np.zeros(heatmap.shape, bool) if mask is None else fit_mask(mask, heatmap.shape)
    return {"defect": _counts(heatmap[defect]), "normal": _counts(heatmap[~defect])}


def grid_histograms(grid_map: np.ndarray, mask: np.ndarray | None) -> dict[str, list[int]] | None:
    """Like `histograms`, over the sensor-grid cells that hold a point (finite values); None when the mask
    is not the grid's size (a mask of another size cannot be matched cell by cell)."""
    if mask is not None and mask.shape != grid_map.shape:
        return None
    scored = np.isfinite(grid_map)
    defect = np.zeros(grid_map.shape, bool) if mask is None else mask.astype(bool)
    return {"defect": _counts(grid_map[scored & defect]), "normal": _counts(grid_map[scored & ~defect])}


def _counts(values: np.ndarray) -> list[int]:
    clipped = np.clip(np.asarray(values, np.float64), 1e-9, 1 - 1e-9)
    logits = np.log(clipped / (1 - clipped))
    index = np.clip(((logits + LOGIT_RANGE) / (2 * LOGIT_RANGE) * BINS).astype(np.int64), 0, BINS - 1)
    return np.bincount(index, minlength=BINS).tolist()


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


def localised_fields(modality: str, item, record: dict, verdict, report) -> dict:
    """The fields a result row gets from its expert's map for this kind of item (none for other kinds).

    item: the evaluation Item (its mask and label); record: the row so far (its verdict fields);
    report: the expert's report of the analysis (None without one).
    """
    route = ROUTES.get(modality)
    if route is None:
        return {"pixels": None}
    from assistant.evaluation.metrics import load_mask

    mask = load_mask(item.mask) if item.mask else None
    if item.anomalous and mask is None:
        return {"pixels": None}  # an anomaly without a mask: which pixels are defective is unknown
    return route(item, record, verdict, report, mask)


def _image_fields(item, record: dict, verdict, report, mask) -> dict:
    heatmap = getattr(report, "heatmap", None)
    return {"pixels": histograms(heatmap, mask) if heatmap is not None else None}


def _grid_fields(item, record: dict, verdict, report, mask) -> dict:
    """Scans: box hit and histograms in the sensor grid; the verdict's box on the rendered view is not compared."""
    grid_map = getattr(report, "grid_map", None)
    called = verdict is not None and record.get("anomalous") and item.anomalous
    return {"box_hit": grid_box_hit(list(verdict.regions or []), mask) if called else None,
            "pixels": grid_histograms(grid_map, mask) if grid_map is not None else None}


ROUTES = {"image": _image_fields, "point_cloud": _grid_fields}
