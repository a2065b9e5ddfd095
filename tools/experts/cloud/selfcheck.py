"""Without any reference scan: a check of the scan against itself, clearly weaker evidence.

Each point is compared with the smooth surface its surroundings continue into: a quadric is fitted
to the neighbours in a ring around the point (not the nearest ones, so that a dent or bump up to
the ring's size does not bend the fit), using only neighbours that face the same way (so a sharp
edge between two faces is not mistaken for a defect). The point's offset from that surface,
averaged over about 20 points, is scaled by the scan's own robust spread (median absolute
deviation, at least the scan's noise); a place more than THRESHOLD_Z spreads off its surroundings
is flagged. Sharp edges and corners (rough neighbourhoods) are left out: they belong to the design.

It finds local dents, bumps and lumps on otherwise smooth surfaces. It cannot know the design: a
feature that is meant to be there (an embossed mark, a fillet) looks the same, and a missing or
wrong part that leaves a smooth surface looks normal. Reports say so.
"""

from __future__ import annotations

import numpy as np

from tools.experts.cloud.deviation import cell_mean
from tools.inputs.prepared import PreparedCloud, estimate_normals, typical_spacing, voxel_downsample

THRESHOLD_Z = 25.0  # robust spreads; chosen on generated development scans, seed 0 (benchmarks/results/cloud.md)
WORKING_POINTS = 12_000
NEIGHBOURS = 160
RING_START = 48  # the nearest neighbours skipped by the fit
SAME_SIDE = 0.8  # cosine: neighbours whose normal turns more than ~37 degrees away belong to another face
CHUNK = 2000
EDGE_NEIGHBOURS = 16
EDGE_ROUGHNESS = 0.02  # neighbourhoods flatter than this are a smooth surface; rougher ones an edge, corner or noise


def surface_offsets(cloud: PreparedCloud) -> tuple[np.ndarray, np.ndarray]:
    """(offset of each prepared point from the surface its surroundings continue into, robust z of it)."""
    from scipy.spatial import cKDTree

    rows = voxel_downsample(cloud.points, WORKING_POINTS)
    working = cloud.points[rows].astype(np.float64)
    normals = estimate_normals(working.astype(np.float32)).astype(np.float64)
    count = min(NEIGHBOURS, len(working) - 1)
    _, neighbours = cKDTree(working).query(working, k=count + 1)
    ring = neighbours[:, 1 + min(RING_START, count // 3):]
    chunks = np.array_split(np.arange(len(working)), max(1, len(working) // CHUNK))
    offsets = np.concatenate([_fit_offsets(working, normals, ring, chunk) for chunk in chunks])
    roughness = _roughness(working, neighbours[:, 1:EDGE_NEIGHBOURS + 1])
    edges = roughness > EDGE_ROUGHNESS
    if edges.any():  # an edge or corner is a feature of the design; near one the ring fit is lopsided: not judged
        reach = float(np.median(np.linalg.norm(working[neighbours[:, -1]] - working, axis=1)))
        offsets[cKDTree(working[edges]).query(working, k=1)[0] < reach] = 0.0
    _, nearest = cKDTree(working).query(cloud.points, k=1)
    spacing = typical_spacing(cloud.points)
    smoothed = cell_mean(cloud.points, offsets[nearest], spacing * np.sqrt(20))
    centre = np.median(smoothed)
    noise = float(np.median(roughness)) ** 0.5 * spacing  # the scan's own noise: a floor under its spread
    spread = max(1.4826 * float(np.median(np.abs(smoothed - centre))), noise, 1e-12)
    return smoothed.astype(np.float32), ((smoothed - centre) / spread).astype(np.float32)


def _roughness(points: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Per point: the smallest share of its neighbourhood's spread (0 on a flat or smooth surface, high at an edge)."""
    around = points[neighbours] - points[neighbours].mean(axis=1, keepdims=True)
    values = np.linalg.eigvalsh(np.einsum("nki,nkj->nij", around, around))
    return values[:, 0] / np.maximum(values.sum(axis=1), 1e-18)


def _fit_offsets(points: np.ndarray, normals: np.ndarray, ring: np.ndarray, chunk: np.ndarray) -> np.ndarray:
    """Signed offset of each chunk point from the quadric w = f(u, v) fitted to its same-side ring neighbours."""
    normal = normals[chunk]
    helper = np.where(np.abs(normal[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    first = np.cross(normal, helper)
    first /= np.linalg.norm(first, axis=1, keepdims=True)
    second = np.cross(normal, first)
    local = points[ring[chunk]] - points[chunk][:, None, :]
    u, v, w = (np.einsum("nkj,nj->nk", local, axis) for axis in (first, second, normal))
    same_side = (np.abs(np.einsum("nkj,nj->nk", normals[ring[chunk]], normal)) > SAME_SIDE).astype(np.float64)
    design = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=2)
    weighted = design * same_side[:, :, None]
    lhs = np.einsum("nki,nkj->nij", weighted, design) + 1e-9 * np.eye(6)
    rhs = np.einsum("nki,nk->ni", weighted, w)
    enough = same_side.sum(axis=1) >= 12
    solution = np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]
    return np.where(enough, -solution[:, 0], 0.0)  # the point sits at (0, 0, 0): its offset is 0 - f(0, 0)
