"""The features of one reference image and of the copies made from it, through the feature cache.

Everything here depends only on the reference's pixels, the feature extractor and the working
size, so it is computed once per reference and then read from the cache (tools/experts/vision/
cache.py): the grid (and, for the built-in extractors, the grids of copies moved by half a
cell), the turned copies' grids, the grids of jittered copies and of stand-in flaws, and the
coreset of its patches when a bank must be thinned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from tools.experts.vision import cache
from tools.experts.vision.matching import coreset
from tools.experts.vision.standins import border_colour, jittered_copies, stand_in_defects

ROTATION_ANGLES = tuple(range(0, 360, 30))
FLAWS_PER_REFERENCE = 4
CHANGED = 0.05  # a cell whose features moved by this share of a typical cell's norm belongs to a flaw


@dataclass
class ReferenceFeatures:
    """One reference image, prepared for the memory bank (arrays are raw features)."""

    image: Image.Image  # the original
    sha: str
    size: tuple[int, int]  # working (width, height)
    extractor: object
    cache_dir: object = None

    def key(self, what: str) -> str:
        """The cache key of something computed from this reference alone."""
        return cache.entry_key(self.sha, self.extractor.fingerprint(), self.size, what)

    def working(self) -> Image.Image:
        """The reference at the working size (only computed when something must be encoded)."""
        if self.image.size == self.size:
            return self.image
        return self.image.resize(self.size, Image.BILINEAR, reducing_gap=2.0)

    def grids(self) -> np.ndarray:
        """S x h x w x d: the reference, then (built-in extractors) copies moved by half a cell."""
        return self._stored("grids", self._encode_moved)["grids"]

    def turned(self) -> np.ndarray:
        """A x h x w x d: the reference turned by each of ROTATION_ANGLES[1:]."""
        def encode():
            image = self.working()
            fill = border_colour(image)
            return {"turned": np.stack([self.extractor.patch_features(to_array(
                image.rotate(a, resample=Image.BILINEAR, fillcolor=fill))) for a in ROTATION_ANGLES[1:]])}
        return self._stored("turned", encode)["turned"]

    def jittered(self, count: int, any_angle: bool) -> np.ndarray:
        """count x h x w x d: jittered copies (any angle for parts that lie at any angle)."""
        def encode():
            copies = jittered_copies(self.working(), count, _seed(self.sha), any_angle)
            return {"jittered": np.stack([self.extractor.patch_features(to_array(c)) for c in copies])}
        return self._stored(f"jittered-{count}-{'any' if any_angle else 'upright'}", encode)["jittered"]

    def flaws(self) -> tuple[np.ndarray, np.ndarray]:
        """(F x h x w x d grids of stand-in flaws, F x 4 cell boxes (row0, row1, col0, col1) of what changed)."""
        def encode():
            grids = np.stack([self.extractor.patch_features(to_array(image))
                              for image, _ in stand_in_defects(self.working(), FLAWS_PER_REFERENCE, _seed(self.sha))])
            plain = self.grids()[0].astype(np.float32)
            return {"flaws": grids, "cells": np.stack([changed_cells(plain, g) for g in grids])}
        stored = self._stored("flaws", encode)
        return stored["flaws"], stored["cells"]

    def free_patches(self, with_turned: bool, limit: int) -> np.ndarray:
        """The reference's patches for free matching (with its turned copies), at most `limit` (a coreset)."""
        grids = [self.grids()[:1]] + ([self.turned()] if with_turned else [])
        patches = np.concatenate([g.reshape(-1, g.shape[-1]) for g in grids])
        if len(patches) <= limit:
            return patches
        chosen = self._stored(f"coreset-{int(with_turned)}-{limit}",
                              lambda: {"chosen": coreset(patches, limit, _seed(self.sha))})["chosen"]
        return patches[chosen]

    def _stored(self, what: str, compute) -> dict[str, np.ndarray]:
        return cache.cached(self.key(what), compute, self.cache_dir)

    def _encode_moved(self) -> dict[str, np.ndarray]:
        image = self.working()
        half = self.extractor.stride // 2
        shifts = [(0, 0)] + ([(half, 0), (0, half), (half, half)] if self.extractor.map_scales else [])
        fill = np.asarray(border_colour(image), np.float32) / 255.0
        return {"grids": np.stack(self.extractor.shifted_patch_features(to_array(image), shifts, fill))}


def changed_cells(plain: np.ndarray, flawed: np.ndarray) -> np.ndarray:
    """The box (row0, row1, col0, col1) of the cells whose features a flaw changed."""
    typical = float(np.median(np.linalg.norm(plain, axis=-1))) or 1.0
    moved = np.linalg.norm(flawed.astype(np.float32) - plain, axis=-1) > CHANGED * typical
    if not moved.any():
        return np.array([0, 1, 0, 1])
    rows, cols = np.flatnonzero(moved.any(axis=1)), np.flatnonzero(moved.any(axis=0))
    return np.array([rows[0], rows[-1] + 1, cols[0], cols[-1] + 1])


def to_array(image: Image.Image) -> np.ndarray:
    """RGB float32 array in [0, 1]."""
    return np.asarray(image, dtype=np.float32) / 255.0


def _seed(sha: str) -> int:
    return int(sha[:8], 16)
