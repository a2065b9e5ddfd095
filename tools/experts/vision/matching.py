"""Patch nearest-neighbour matching against the reference memory bank.

Two ways to compare a query patch with the reference patches:
- "position": only with reference patches within `window` cells of the same place (objects
  photographed in a fixed pose: a screw hole where a label should be is then an anomaly);
- "free": with every reference patch anywhere (textures, and parts that lie in any pose, whose
  memory bank then also holds rotated and mirrored copies of the references).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MATCHING_MODES = ("position", "free")
CHUNK = 4096  # reference patches per matrix product: bounds memory at query_patches x CHUNK


@dataclass
class MemoryBank:
    """Standardised reference patch features of one reference set."""

    grids: np.ndarray  # G x h x w x d: each reference, also shifted by half a cell (position matching)
    grid_owners: np.ndarray  # G, index of the reference each grid came from
    patches: np.ndarray  # M x d, patches of the (possibly rotated) references (free matching)
    owners: np.ndarray  # M, index of the reference each free patch came from
    mean: np.ndarray  # d, feature mean over the references
    scale: np.ndarray  # d, feature spread over the references

    @property
    def count(self) -> int:
        """Number of references."""
        return int(self.grid_owners.max()) + 1

    def standardise(self, grid: np.ndarray) -> np.ndarray:
        """Bring raw features into the bank's standardised space."""
        return ((grid - self.mean) / self.scale).astype(np.float32)

    def without(self, index: int) -> MemoryBank:
        """The bank less one reference (for leave-one-out calibration)."""
        keep_grids, keep = self.grid_owners != index, self.owners != index
        grid_owners, owners = self.grid_owners[keep_grids], self.owners[keep]
        return MemoryBank(self.grids[keep_grids], grid_owners - (grid_owners > index), self.patches[keep],
                          owners - (owners > index), self.mean, self.scale)

    def first_grid(self, index: int) -> np.ndarray:
        """The unshifted grid of one reference."""
        return self.grids[np.flatnonzero(self.grid_owners == index)[0]]


def build_bank(grids: list[list[np.ndarray]], free_grids: list[list[np.ndarray]]) -> MemoryBank:
    """A memory bank from raw grids: per reference, its position grids (the first one unshifted)
    and its free-matching grids."""
    stack = np.stack([g for variants in grids for g in variants]).astype(np.float32)
    grid_owners = np.concatenate([np.full(len(v), i, np.int32) for i, v in enumerate(grids)])
    flat = stack.reshape(-1, stack.shape[-1])
    spread = flat.std(axis=0)
    mean, scale = flat.mean(axis=0), spread + 1e-3 + 0.05 * spread.mean()  # no tiny divisors
    patches = [g.reshape(-1, g.shape[-1]) for variants in free_grids for g in variants]
    owners = [np.full(len(p), i, np.int32) for i, variants in enumerate(free_grids)
              for p in (g.reshape(-1, g.shape[-1]) for g in variants)]
    return MemoryBank(((stack - mean) / scale).astype(np.float32), grid_owners,
                      ((np.concatenate(patches) - mean) / scale).astype(np.float32),
                      np.concatenate(owners), mean, scale)


def match(bank: MemoryBank, query: np.ndarray, mode: str, window: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each query patch to its nearest reference patch (h x w), and the mean
    nearest distance to each reference separately (R), from a standardised query grid."""
    if mode == "position":
        per_grid = position_distances(bank.grids, query, window)
        per_reference = np.stack([per_grid[bank.grid_owners == i].min(axis=0) for i in range(bank.count)])
    else:
        per_reference = free_distances(bank.patches, bank.owners, bank.count, query)
    return per_reference.min(axis=0), per_reference.mean(axis=(1, 2))


def position_distances(grids: np.ndarray, query: np.ndarray, window: int) -> np.ndarray:
    """R x h x w: per reference grid, the nearest patch within `window` cells of the same place.

    |a - b|^2 = |a|^2 - 2 a.b + |b|^2, with the grids laid out h x w x R x d so that each of the
    (2 window + 1)^2 offsets is one batched matrix-vector product (no difference array)."""
    count, h, w, d = grids.shape
    padded = np.pad(grids, ((0, 0), (window, window), (window, window), (0, 0)), mode="edge")
    padded = np.ascontiguousarray(padded.transpose(1, 2, 0, 3))  # (h + 2 window) x (w + 2 window) x R x d
    norms = np.einsum("hwrd,hwrd->hwr", padded, padded)
    column = query[..., None]
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
    flat = query.reshape(-1, d)
    query_norms = np.einsum("nd,nd->n", flat, flat)
    best = np.full((count, h * w), np.inf, np.float32)
    for index in range(count):
        mine = patches[owners == index]
        for start in range(0, len(mine), CHUNK):
            block = mine[start:start + CHUNK]
            squared = np.einsum("md,md->m", block, block)[None] - 2.0 * (flat @ block.T)
            np.minimum(best[index], squared.min(axis=1) + query_norms, out=best[index])
    return np.sqrt(np.maximum(best, 0) / d).reshape(count, h, w)


def thin_patches(patches: np.ndarray, owners: np.ndarray, limit: int, seed: int = 0):
    """At most `limit` patches, keeping each reference's share (random, seeded), for speed."""
    if len(patches) <= limit:
        return patches, owners
    keep = np.sort(np.random.default_rng(seed).choice(len(patches), limit, replace=False))
    return patches[keep], owners[keep]
