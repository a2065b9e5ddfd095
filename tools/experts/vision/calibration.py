"""Calibration from normal references only: image scores, threshold, score mapping, matching choice.

No defective sample is needed. Each reference is scored against the others (leave-one-out), and
slightly jittered copies of each reference (shift, small rotation, lighting) against the whole
bank; the threshold sits a margin above the highest of these normal scores. With a single
reference only the jittered copies exist; they are easier than a new photograph (same object,
same dust), so their margin is wider.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance
from scipy import ndimage

LEAVE_ONE_OUT_MARGIN = 1.15
JITTER_MARGIN = 1.6
SHARPNESS = 4.0  # how fast the 0..1 score leaves 0.5 around the threshold
AUTO_FREE_RATIO = 1.3  # position matching this much worse than free on normals -> pose varies


def smooth_map(distances: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    """Lightly smoothed patch distance map (suppresses single-patch noise, keeps small defects)."""
    return ndimage.gaussian_filter(distances.astype(np.float32), sigma=sigma, mode="nearest")


def image_score(smoothed: np.ndarray) -> float:
    """Image-level anomaly distance: the highest smoothed patch distance."""
    return float(smoothed.max())


def to_score(raw, threshold: float):
    """Map raw distances to [0, 1]: monotone, exactly 0.5 at the threshold."""
    raw = np.maximum(np.asarray(raw, dtype=np.float64), 1e-12)
    return 1.0 / (1.0 + (threshold / raw) ** SHARPNESS)


def threshold_from_normals(leave_one_out: list[float], jittered: list[float]) -> float:
    """The decision threshold: a margin above the highest normal score seen."""
    candidates = [max(jittered) * JITTER_MARGIN] if jittered else []
    if leave_one_out:
        candidates.append(max(leave_one_out) * LEAVE_ONE_OUT_MARGIN)
    return float(max(candidates))


def jittered_copies(image: Image.Image, count: int, seed: int, free_rotation: bool) -> list[Image.Image]:
    """Copies of a normal image with the pose and lighting changes a new photograph would have."""
    rng = np.random.default_rng(seed)
    copies = []
    for _ in range(count):
        angle = rng.uniform(0, 360) if free_rotation else rng.uniform(-2.0, 2.0)
        shift = rng.uniform(-0.015, 0.015, 2) * np.array(image.size)
        moved = image.rotate(angle, resample=Image.BILINEAR, translate=tuple(shift), fillcolor=border_colour(image))
        moved = ImageEnhance.Brightness(moved).enhance(rng.uniform(0.94, 1.06))
        copies.append(ImageEnhance.Contrast(moved).enhance(rng.uniform(0.95, 1.05)))
    return copies


def border_colour(image: Image.Image) -> tuple[int, ...]:
    """Median colour of the top and bottom rows: the fill for rotated or shifted copies."""
    rows = np.asarray(image)[[0, -1]].reshape(-1, 3)
    return tuple(int(v) for v in np.median(rows, axis=0))


def choose_matching(score_with: Callable[[str], list[float]], count: int) -> str:
    """"position" unless position matching scores the normals clearly worse than free matching.

    With one reference there is nothing to compare, and fixed-pose photographs are the common
    case on an inspection station, so position matching is used."""
    if count < 2:
        return "position"
    position, free = np.median(score_with("position")), np.median(score_with("free"))
    return "free" if position > AUTO_FREE_RATIO * free else "position"
