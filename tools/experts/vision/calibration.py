"""Calibration from normal references only: image scores, threshold, score mapping, matching choice.

No defective sample is needed. Two kinds of stand-in are scored against the memory bank:
- normals: each reference against the others (leave-one-out: the real spread between parts),
  and jittered copies of each reference (a new photograph of the same part);
- anomalies: each reference with a synthetic flaw pasted on it (tools/experts/vision/standins.py),
  against the bank that holds the clean reference, so its score is the flaw alone.
The threshold lies between the two, on a log scale: `normal ** (1 - PULL) * flaw ** PULL`, and
never below the normal level (a class whose stand-in flaws hardly show keeps its normals; no
reference would be flagged against the others). The normal level is the highest leave-one-out
score and the highest jittered score (times a margin, which cross-validation set to 1). The constants were chosen by
leave-one-class-out cross-validation (benchmarks/select_expert.py, results in
benchmarks/results/expert.md), not on the classes they were measured on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

SHARPNESS = 4.0  # how fast the 0..1 score leaves 0.5 around the threshold


@dataclass(frozen=True)
class ThresholdRule:
    """How the threshold is placed between the normal and the flawed stand-ins."""

    jitter_margin: float = 1.0  # a jittered copy's score times this estimates a new photograph's
    pull: float = 0.25  # 0: at the normal level; 1: at the stand-in flaws' level
    flaw_quantile: float = 0.25  # which of the stand-in flaws' scores stands for "a defect"
    floor: float = 1.0  # the threshold is at least this times the normal level (never below a normal stand-in)


RULE = ThresholdRule()


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


def normal_level(leave_one_out: list[float], jittered: list[float], rule: ThresholdRule = RULE) -> float:
    """The highest score a new normal is expected to reach."""
    candidates = [max(jittered) * rule.jitter_margin] if jittered else []
    if leave_one_out:
        candidates.append(max(leave_one_out))
    return float(max(candidates))


def threshold_from_stand_ins(leave_one_out: list[float], jittered: list[float], flaws: list[float],
                             rule: ThresholdRule = RULE) -> float:
    """The decision threshold between the normal level and the stand-in flaws' scores."""
    normal = normal_level(leave_one_out, jittered, rule)
    if not flaws:
        return normal * rule.floor
    flaw = float(np.quantile(flaws, rule.flaw_quantile))
    between = normal ** (1 - rule.pull) * max(flaw, 1e-12) ** rule.pull
    return float(max(normal * rule.floor, between))


def separation(leave_one_out: list[float], jittered: list[float], flaws: list[float]) -> float:
    """How far the stand-in flaws score above the normal level (log ratio; larger is better)."""
    normal = normal_level(leave_one_out, jittered)
    return float(np.log(max(np.median(flaws), 1e-12) / max(normal, 1e-12))) if flaws else 0.0
