"""A small image descriptor for finding similar reference normals, with no downloaded weights.

Three parts, each unit-normalised and weighted, then concatenated and L2-normalised, so that the
cosine similarity of two descriptors is a weighted mix of: colour distribution (joint RGB
histogram), layout (a zero-mean grayscale thumbnail) and texture direction (gradient-orientation
histograms on a 2 x 2 grid). 352 dimensions, about a millisecond per image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

COLOUR_BINS = 4  # per channel: 4 x 4 x 4 = 64 joint bins
THUMB_SIDE = 16  # 16 x 16 = 256 values
ORIENTATION_BINS = 8  # per cell of a 2 x 2 grid: 32 values
WORK_SIDE = 64  # every image is resized to this square first: speed, and size independence
# Share of the squared norm given to each part (colour, layout, texture).
WEIGHTS = (0.35, 0.45, 0.20)
DIMENSIONS = COLOUR_BINS**3 + THUMB_SIDE**2 + 4 * ORIENTATION_BINS


def image_descriptor(image: Image.Image) -> np.ndarray:
    """L2-normalised float32 descriptor (352 values) of a PIL image; similar images -> high cosine."""
    rgb = np.asarray(image.convert("RGB").resize((WORK_SIDE, WORK_SIDE), Image.Resampling.BILINEAR),
                     dtype=np.float32) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    parts = (_colour_histogram(rgb), _thumbnail(gray), _orientation_histograms(gray))
    joined = np.concatenate([np.sqrt(w) * _unit(p) for w, p in zip(WEIGHTS, parts, strict=True)])
    return _unit(joined).astype(np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 1e-12 else vector


def _colour_histogram(rgb: np.ndarray) -> np.ndarray:
    levels = np.minimum((rgb * COLOUR_BINS).astype(np.int64), COLOUR_BINS - 1)
    index = (levels[..., 0] * COLOUR_BINS + levels[..., 1]) * COLOUR_BINS + levels[..., 2]
    counts = np.bincount(index.ravel(), minlength=COLOUR_BINS**3).astype(np.float32)
    return np.sqrt(counts / counts.sum())  # square root: a few dominant colours do not drown the rest


def _thumbnail(gray: np.ndarray) -> np.ndarray:
    step = WORK_SIDE // THUMB_SIDE
    thumb = gray.reshape(THUMB_SIDE, step, THUMB_SIDE, step).mean(axis=(1, 3)).ravel()
    return thumb - thumb.mean()  # zero mean: layout, not brightness (brightness is in the colours)


def _orientation_histograms(gray: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned: an edge and its reverse look alike
    bins = np.minimum((angle / np.pi * ORIENTATION_BINS).astype(np.int64), ORIENTATION_BINS - 1)
    half = WORK_SIDE // 2
    cells = []
    for rows in (slice(0, half), slice(half, None)):
        for cols in (slice(0, half), slice(half, None)):
            cell = np.bincount(bins[rows, cols].ravel(), weights=magnitude[rows, cols].ravel(),
                               minlength=ORIENTATION_BINS)
            cells.append(np.sqrt(cell))
    return np.concatenate(cells).astype(np.float32)
