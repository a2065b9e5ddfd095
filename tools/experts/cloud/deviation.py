"""How far each point of an aligned scan lies from the reference surface, and which reference surface it lacks.

Two random samplings of one surface are about a point spacing apart everywhere, so the plain
distance to the nearest reference point hides a dent shallower than that. The distance along the
nearest reference point's normal (point-to-plane) does not: on a clean surface it is sensor noise
around zero, and averaged over about 20 neighbouring points (a voxel grid, two staggered grids)
the noise shrinks while a dent or bulge stays. A point farther from every reference point than
the sampling allows (a lump, a part that should not be there) counts by that distance too.
The other direction finds what is missing: reference surface with no scan point near it. Points
beyond the edge of the other scan's view are not compared (tools/experts/cloud/coverage.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.experts.cloud.coverage import beyond_edge

SMOOTH_POINTS = 20  # points averaged per voxel cell
GAP_SPACINGS = 2.5  # a point this many spacings from the other surface is off it, not just sampled apart
SHRINK = 2.0  # a cell's mean counts as if it held this many more points with no deviation


@dataclass
class Surface:
    """A reference surface: points with oriented normals, which scan each point came from, a search tree."""

    points: np.ndarray  # float32 (M, 3)
    normals: np.ndarray  # float32 (M, 3), oriented consistently (outwards where that is known)
    owner: np.ndarray  # int (M,): the reference scan each point came from
    spacing: float  # typical distance between neighbouring points

    def __post_init__(self):
        from scipy.spatial import cKDTree

        from tools.inputs.prepared import local_spacing

        self.tree = cKDTree(self.points)
        self.local = local_spacing(self.points)  # sparser where a surface was seen at a grazing angle


@dataclass
class PointDeviation:
    """Per point of the scan: signed distance from the reference surface (smoothed), and its size."""

    signed: np.ndarray  # float32 (N,): + outside / above the reference surface, - inside / below
    magnitude: np.ndarray  # float32 (N,): max(|signed|, smoothed distance beyond the sampling gap)
    off_surface: np.ndarray  # bool (N,): the gap term decided (far from any reference point)
    owner: np.ndarray  # int (N,): the reference scan of the nearest reference point
    nearest: np.ndarray  # int (N,): the nearest reference point
    fitness: float = 0.0  # share of points within the sampling gap of the reference surface
    residual: float = 0.0  # RMS point-to-plane distance of those points (before averaging)


def deviation(points: np.ndarray, surface: Surface, spacing: float, local: np.ndarray) -> PointDeviation:
    """Deviation of aligned scan points (spacing: the scan's typical point spacing; local: each point's own).

    The sampling gap allowed at a point is GAP_SPACINGS times the sparser of the two scans there.
    """
    distance, nearest = surface.tree.query(points, k=1)
    offset = points - surface.points[nearest]
    along = np.einsum("ij,ij->i", offset, surface.normals[nearest])
    gap = np.maximum(distance - GAP_SPACINGS * np.maximum(surface.local[nearest], local), 0.0)
    outside = beyond_edge(points, gap, surface.points, surface.tree, max(surface.spacing, spacing))
    along, gap = np.where(outside, 0.0, along), np.where(outside, 0.0, gap)  # nothing there to compare with
    matched = gap == 0
    residual = float(np.sqrt(np.mean(along[matched] ** 2))) if matched.any() else float("inf")
    cell = spacing * np.sqrt(SMOOTH_POINTS)
    signed, gap = cell_mean(points, along, cell), cell_mean(points, gap, cell)
    magnitude = np.maximum(np.abs(signed), gap)
    return PointDeviation(signed.astype(np.float32), magnitude.astype(np.float32), gap > np.abs(signed),
                          surface.owner[nearest], nearest, float(matched.mean()), residual)


def missing(surface: Surface, points: np.ndarray, spacing: float, local: np.ndarray, tree=None) -> np.ndarray:
    """Per reference point (float32 (M,)): how far beyond the sampling gap the nearest scan point is.

    Large where the reference has surface the aligned scan lacks (a hole, a missing part).
    """
    from scipy.spatial import cKDTree

    tree = tree if tree is not None else cKDTree(points)
    distance, nearest = tree.query(surface.points, k=1)
    gap = np.maximum(distance - GAP_SPACINGS * np.maximum(surface.local, local[nearest]), 0.0)
    gap[beyond_edge(surface.points, gap, points, tree, max(surface.spacing, spacing))] = 0.0
    return cell_mean(surface.points, gap, surface.spacing * np.sqrt(SMOOTH_POINTS)).astype(np.float32)


def cell_max(points: np.ndarray, values: np.ndarray, cell: float) -> np.ndarray:
    """Each point's value raised to the largest in its voxel cell, over two grids offset by half a cell."""
    result = np.asarray(values, np.float64).copy()
    for shift in (0.0, 0.5):
        cells = _cell_ids(np.floor(points / cell + shift).astype(np.int64))
        largest = np.full(cells.max() + 1, -np.inf)
        np.maximum.at(largest, cells, values)
        result = np.maximum(result, largest[cells])
    return result


def cell_mean(points: np.ndarray, values: np.ndarray, cell: float) -> np.ndarray:
    """Each point's value averaged with the points in its voxel cell, over two grids offset by half a cell.

    The mean is shrunk towards zero where a cell holds few points (divided by count + SHRINK): one
    stray point is weak evidence, twenty points agreeing are not.
    """
    total = np.zeros(len(points), np.float64)
    for shift in (0.0, 0.5):
        cells = _cell_ids(np.floor(points / cell + shift).astype(np.int64))
        sums = np.bincount(cells, weights=values)
        counts = np.bincount(cells)
        total += sums[cells] / (counts[cells] + SHRINK)
    return total / 2


def _cell_ids(coordinates: np.ndarray) -> np.ndarray:
    """A dense id (0..cells-1) for each row of integer voxel coordinates."""
    coordinates = coordinates - coordinates.min(axis=0)
    dims = coordinates.max(axis=0) + 1
    keys = (coordinates[:, 0] * dims[1] + coordinates[:, 1]) * dims[2] + coordinates[:, 2]
    return np.unique(keys, return_inverse=True)[1].ravel()
