"""Patch nearest-neighbour matching against the reference memory bank.

Two ways to compare a query patch with the reference patches:
- "position": only with reference patches within `window` cells of the same place (objects
  photographed in a fixed pose: a screw hole where a label should be is then an anomaly). With
  turned references (parts that lie at any angle) each reference is first turned to the angle
  that fits the query best, then compared place by place;
- "free": with every reference patch anywhere (textures, and parts that lie in any pose, whose
  memory bank then also holds turned copies of the references). A bank grown past a limit keeps
  a greedy coreset of each reference's patches (PatchCore's k-centre selection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MATCHING_MODES = ("position", "free")
CHUNK = 4096  # reference patches per matrix product: bounds memory at query_patches x CHUNK
CORESET_DIMENSIONS = 32  # random projection used to choose the coreset (PatchCore uses one too)


@dataclass
class MemoryBank:
    """Reference patch features of one reference set (standardised when the extractor asks for it)."""

    grids: np.ndarray  # G x h x w x d: each reference's grid, and its turned copies (position matching)
    grid_owners: np.ndarray  # G, index of the reference each grid came from
    grid_angles: np.ndarray  # G, the turn of each grid in degrees (0: the reference as photographed)
    patches: np.ndarray  # M x d, patches for free matching (a coreset when the bank grew large)
    owners: np.ndarray  # M, index of the reference each free patch came from
    mean: np.ndarray  # d, subtracted from every feature
    scale: np.ndarray  # d, every feature is divided by it

    @property
    def count(self) -> int:
        """Number of references."""
        return int(self.grid_owners.max()) + 1

    def standardise(self, grid: np.ndarray) -> np.ndarray:
        """Bring raw features into the bank's space."""
        if not self.standardised:  # features used as they are: (x - 0) / 1 is x, without two passes over it
            return grid.astype(np.float32, copy=False)
        return ((grid - self.mean) / self.scale).astype(np.float32)

    def without(self, index: int) -> MemoryBank:
        """The bank less one reference (for leave-one-out calibration)."""
        keep_grids, keep = self.grid_owners != index, self.owners != index
        grid_owners, owners = self.grid_owners[keep_grids], self.owners[keep]
        return MemoryBank(self.grids[keep_grids], grid_owners - (grid_owners > index), self.grid_angles[keep_grids],
                          self.patches[keep], owners - (owners > index), self.mean, self.scale)

    def only(self, index: int) -> MemoryBank:
        """The bank of one reference alone."""
        keep_grids, keep = self.grid_owners == index, self.owners == index
        return MemoryBank(self.grids[keep_grids], np.zeros(int(keep_grids.sum()), np.int32),
                          self.grid_angles[keep_grids], self.patches[keep], np.zeros(int(keep.sum()), np.int32),
                          self.mean, self.scale)

    @property
    def standardised(self) -> bool:
        """True when features were brought to the set's own spread (distances then depend on the whole set)."""
        return bool(np.any(self.mean != 0) or np.any(self.scale != 1))

    def first_grid(self, index: int) -> np.ndarray:
        """The unturned grid of one reference."""
        return self.grids[np.flatnonzero((self.grid_owners == index) & (self.grid_angles == 0))[0]]


def standardisation(grids: list[np.ndarray], standardise: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) per feature over the references' grids, or (0, 1) when features are used as they are."""
    flat = np.concatenate([g.reshape(-1, g.shape[-1]) for g in grids]).astype(np.float32)
    if not standardise:
        return np.zeros(flat.shape[1], np.float32), np.ones(flat.shape[1], np.float32)
    spread = flat.std(axis=0)
    return flat.mean(axis=0), spread + 1e-3 + 0.05 * spread.mean()  # no tiny divisors


def build_bank(grids: list[list[np.ndarray]], angles: list[list[float]], free_patches: list[np.ndarray],
               standardise: bool) -> MemoryBank:
    """A memory bank: per reference its grids (the first unturned), each grid's angle, and its
    free-matching patches (M_i x d), all raw features."""
    mean, scale = standardisation([variants[0] for variants in grids], standardise)
    stack = np.stack([g for variants in grids for g in variants]).astype(np.float32)
    grid_owners = np.concatenate([np.full(len(v), i, np.int32) for i, v in enumerate(grids)])
    grid_angles = np.concatenate([np.asarray(a, np.float32) for a in angles])
    owners = np.concatenate([np.full(len(p), i, np.int32) for i, p in enumerate(free_patches)])
    patches = np.concatenate(free_patches).astype(np.float32)
    bank = MemoryBank(stack, grid_owners, grid_angles, patches, owners, mean, scale)
    return MemoryBank(bank.standardise(stack), grid_owners, grid_angles, bank.standardise(patches), owners, mean, scale)


def match(bank: MemoryBank, query: np.ndarray, mode: str, window: int = 2,
          cells: tuple[slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each query patch to its nearest reference patch (h x w), and the mean nearest
    distance to each reference separately (R), from a query grid in the bank's space. With `cells`
    (rows, columns) only that part of the grid is compared; the rest of the map is 0."""
    if cells is not None:
        return _match_part(bank, query, mode, window, cells)
    if mode == "position":
        per_reference = aligned_distances(bank, position_distances(bank.grids, query, window))
    else:
        per_reference = free_distances(bank.patches, bank.owners, bank.count, query)
    return per_reference.min(axis=0), per_reference.mean(axis=(1, 2))


def aligned_distances(bank: MemoryBank, per_grid: np.ndarray) -> np.ndarray:
    """R x h x w from G x h x w: per reference, its grids (copies moved by half a cell count as
    one) turned to the angle that fits the query best (lowest mean distance), and where that fits
    worse than the unturned grid (the background around a turned part), the unturned grid."""
    result = []
    for index in range(bank.count):
        mine = bank.grid_owners == index
        by_angle = [per_grid[mine & (bank.grid_angles == a)].min(axis=0) for a in np.unique(bank.grid_angles[mine])]
        best = by_angle[int(np.argmin([m.mean() for m in by_angle]))]
        result.append(np.minimum(best, by_angle[0]))  # np.unique sorts: angle 0 comes first
    return np.stack(result)


def _match_part(bank: MemoryBank, query: np.ndarray, mode: str, window: int, cells: tuple[slice, slice]):
    rows, cols = cells
    full = np.zeros(query.shape[:2], np.float32)
    if mode == "free":
        part = free_distances(bank.patches, bank.owners, bank.count, query[rows, cols])
        full[rows, cols] = part.min(axis=0)
        return full, part.mean(axis=(1, 2))
    h, w = query.shape[:2]  # a margin of `window` cells, so the part sees its true neighbours
    r0, r1 = max(0, rows.start - window), min(h, rows.stop + window)
    c0, c1 = max(0, cols.start - window), min(w, cols.stop + window)
    part = aligned_distances(bank, position_distances(bank.grids[:, r0:r1, c0:c1], query[r0:r1, c0:c1], window))
    inner = part[:, rows.start - r0:rows.stop - r0, cols.start - c0:cols.stop - c0]
    full[rows, cols] = inner.min(axis=0)
    return full, inner.mean(axis=(1, 2))


def position_distances(grids: np.ndarray, query: np.ndarray, window: int) -> np.ndarray:
    """G x h x w: per reference grid, the nearest patch within `window` cells of the same place.

    |a - b|^2 = |a|^2 - 2 a.b + |b|^2, with the grids laid out h x w x G x d so that each of the
    (2 window + 1)^2 offsets is one batched matrix-vector product (no difference array)."""
    count, h, w, d = grids.shape
    padded = np.pad(grids, ((0, 0), (window, window), (window, window), (0, 0)), mode="edge")
    padded = np.ascontiguousarray(padded.transpose(1, 2, 0, 3))  # (h + 2 window) x (w + 2 window) x G x d
    norms = np.einsum("hwrd,hwrd->hwr", padded, padded)
    column = np.ascontiguousarray(query, dtype=np.float32)[..., None]
    best = np.full((h, w, count), np.inf, np.float32)
    for dy in range(2 * window + 1):
        for dx in range(2 * window + 1):
            dots = np.matmul(padded[dy:dy + h, dx:dx + w], column)[..., 0]
            np.minimum(best, norms[dy:dy + h, dx:dx + w] - 2.0 * dots, out=best)
    best += np.einsum("hwd,hwd->hw", query, query)[..., None]
    return np.sqrt(np.maximum(best, 0) / d).transpose(2, 0, 1)


def free_distances(patches: np.ndarray, owners: np.ndarray, count: int, query: np.ndarray) -> np.ndarray:
    """R x h x w: per reference, the nearest of its patches anywhere (chunked matrix products)."""
    h, w, d = query.shape
    flat = np.ascontiguousarray(query.reshape(-1, d), dtype=np.float32)
    query_norms = np.einsum("nd,nd->n", flat, flat)
    best = np.full((count, h * w), np.inf, np.float32)
    for index in range(count):
        mine = patches[owners == index]
        for start in range(0, len(mine), CHUNK):
            block = mine[start:start + CHUNK]
            squared = np.einsum("md,md->m", block, block)[None] - 2.0 * (flat @ block.T)
            np.minimum(best[index], squared.min(axis=1) + query_norms, out=best[index])
    return np.sqrt(np.maximum(best, 0) / d).reshape(count, h, w)


def coreset(patches: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices of `count` patches chosen greedily so that every patch is near a chosen one
    (k-centre on a random projection, as PatchCore does); all indices when there are fewer."""
    if len(patches) <= count:
        return np.arange(len(patches))
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((patches.shape[1], CORESET_DIMENSIONS)).astype(np.float32)
    points = patches.astype(np.float32) @ projection
    chosen = np.empty(count, np.int64)
    chosen[0] = 0
    nearest = ((points - points[0]) ** 2).sum(axis=1)
    for slot in range(1, count):
        chosen[slot] = int(np.argmax(nearest))
        np.minimum(nearest, ((points - points[chosen[slot]]) ** 2).sum(axis=1), out=nearest)
    return np.sort(chosen)
