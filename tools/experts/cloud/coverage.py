"""Where two scans of a part cannot be compared: beyond the edge of what one of them saw.

A scan sees a part from one side: at the edge of its view (a silhouette, a steep wall) another
scan from a slightly different pose sees a little more or a little less. A point beyond the other
scan's edge has nothing to be compared with; counting its distance would call every change of
view a defect. Such a point is recognised by two facts together: its nearest point in the other
scan lies on that scan's edge (its neighbours all lie to one side of it), and the point itself is
not surrounded by the other scan's points. A hole or a missing part is surrounded by surface that
was seen, so it still counts; so is a lump on a surface.
"""

from __future__ import annotations

import numpy as np

OPEN_ANGLE = np.radians(150)  # neighbours leaving a gap this wide around a point: it is on an edge
NEIGHBOURS = 16  # neighbours that decide whether a point is on the edge of its scan
SURROUND_NEIGHBOURS = 32  # neighbours that decide whether a point off the surface is surrounded by it
CANDIDATE_GAP = 1.0  # only points at least this many spacings beyond the sampling gap are examined


def beyond_edge(points: np.ndarray, gap: np.ndarray, other: np.ndarray, tree, spacing: float) -> np.ndarray:
    """bool (N,): points (with their distance gap to the other scan) that lie beyond the other scan's edge."""
    result = np.zeros(len(points), bool)
    candidates = np.flatnonzero(gap > CANDIDATE_GAP * spacing)
    if not len(candidates) or len(other) < NEIGHBOURS + 1:
        return result
    _, nearest = tree.query(points[candidates], k=1)
    _, around = tree.query(other[nearest], k=NEIGHBOURS + 1)
    on_edge = _widest_gaps(other[nearest], other[around[:, 1:]]) > OPEN_ANGLE
    chosen = candidates[on_edge]
    if not len(chosen):
        return result
    distances, around = tree.query(points[chosen], k=min(SURROUND_NEIGHBOURS, len(other)))
    reach = np.maximum(3 * gap[chosen], 8 * spacing)[:, None]
    result[chosen] = _widest_gaps(points[chosen], other[around], distances <= reach) > OPEN_ANGLE
    return result


def _widest_gaps(centres: np.ndarray, neighbours: np.ndarray, use: np.ndarray | None = None) -> np.ndarray:
    """Per centre: the widest angle between directions to its neighbours, in the plane the neighbours span.

    neighbours: (N, K, 3); use: (N, K) which neighbours count (the others are ignored).
    """
    use = np.ones(neighbours.shape[:2], bool) if use is None else use
    weight = use[:, :, None].astype(np.float64)
    count = np.maximum(weight.sum(axis=1), 1.0)
    mean = (neighbours * weight).sum(axis=1) / count
    centred = (neighbours - mean[:, None, :]) * weight
    _, vectors = np.linalg.eigh(np.einsum("nki,nkj->nij", centred, centred))
    flat = np.einsum("nki,nij->nkj", neighbours - centres[:, None, :], vectors[:, :, 1:])  # the two widest directions
    angles = np.where(use, np.arctan2(flat[:, :, 1], flat[:, :, 0]), np.inf)
    angles = np.sort(angles, axis=1)
    valid = use.sum(axis=1)
    first = angles[:, :1]
    last = np.take_along_axis(angles, np.maximum(valid - 1, 0)[:, None], axis=1)
    with np.errstate(invalid="ignore"):  # unused neighbours sort last as inf; their differences are dropped
        steps = np.where(np.isfinite(angles[:, 1:]), np.diff(angles, axis=1), 0.0)
        wrap = (first + 2 * np.pi - last)[:, 0]
    widest = np.maximum(steps.max(axis=1), wrap)
    return np.where(valid >= 3, widest, 2 * np.pi)
