"""Anomalous regions of a heatmap: boxes, sizes and where they are, in words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

MAX_REGIONS = 5
ROWS = ("upper", "middle", "lower")
COLUMNS = ("left", "centre", "right")
EDGE_MARGIN = 0.1  # a box within this fraction of the image border is "near the edge"


@dataclass(frozen=True)
class Region:
    """One anomalous area: normalised box (x0, y0, x1, y1), area fraction, peak heat, place in words."""

    box: tuple[float, float, float, float]
    area: float
    peak: float
    where: str

    def to_dict(self) -> dict:
        """Plain JSON-ready fields."""
        return {"box": [round(v, 4) for v in self.box], "area": round(self.area, 5),
                "peak": round(self.peak, 4), "where": self.where}


def find_regions(heatmap: np.ndarray, level: float = 0.5, min_area: float = 0.0005) -> list[Region]:
    """Connected areas where the heatmap reaches `level`, hottest first (at most MAX_REGIONS)."""
    labels, count = ndimage.label(heatmap >= level)
    if count == 0:
        return []
    h, w = heatmap.shape
    index = np.arange(1, count + 1)
    sizes = ndimage.sum_labels(np.ones_like(heatmap), labels, index) / (h * w)
    peaks = ndimage.maximum(heatmap, labels, index)
    regions = []
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if sizes[label - 1] < min_area:
            continue
        norm = (box[1].start / w, box[0].start / h, box[1].stop / w, box[0].stop / h)
        regions.append(Region(norm, float(sizes[label - 1]), float(peaks[label - 1]), describe_place(norm)))
    regions.sort(key=lambda r: (-r.peak, -r.area))
    return regions[:MAX_REGIONS]


def describe_place(box: tuple[float, float, float, float]) -> str:
    """Where a normalised box lies, e.g. "upper left, near the edge" or "centre"."""
    x0, y0, x1, y1 = box
    row = ROWS[min(int((y0 + y1) / 2 * 3), 2)]
    column = COLUMNS[min(int((x0 + x1) / 2 * 3), 2)]
    place = "centre" if (row, column) == ("middle", "centre") else f"{row} {column}"
    if place == "centre":
        place += _lean((x0 + x1) / 2, (y0 + y1) / 2)
    if x1 - x0 > 0.6 or y1 - y0 > 0.6:
        return f"large area around the {place}"
    if min(x0, y0, 1 - x1, 1 - y1) < EDGE_MARGIN:
        place += ", near the edge"
    return place


def _lean(cx: float, cy: float) -> str:
    """For a box in the central cell, which way it leans (", towards the upper right"), if clearly."""
    vertical = "upper" if cy < 0.42 else "lower" if cy > 0.58 else ""
    horizontal = "left" if cx < 0.42 else "right" if cx > 0.58 else ""
    side = " ".join(w for w in (vertical, horizontal) if w)
    return f", towards the {side}" if side else ""
