"""NAB scoring (Lavin & Ahmad 2015, "Evaluating Real-time Anomaly Detection Algorithms - the Numenta
Anomaly Benchmark"), with the semantics of NAB v1.1's own scorer.

Per series, rows in the probationary period (the first 15 %, at most 750 rows) are not scored.
A detection is a row whose anomaly score is at or above the detector's threshold. Each labelled
window counts once: its earliest detection earns A_TP * sigma(y) / sigma(-1), where y in [-1, 0)
is that row's position in the window (-1 at its first row) and sigma(y) = 2 / (1 + e^(5y)) - 1,
or, with no detection in it, -A_FN. Every detection outside the windows costs A_FP * sigma(y)
with y its distance past the end of the preceding window in window widths (before any window, and
3 or more widths after one, the full -A_FP). A profile sets A_TP, A_FP, A_FN. A corpus score is
normalised to 100 * (raw - null) / (perfect - null): the null detector detects nothing, the perfect
one earns A_TP for every labelled window.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tools.errors import InputError

PROBATION_SHARE = 0.15
PROBATION_CAP = 0.15 * 5000  # NAB: at most 750 rows


@dataclass(frozen=True)
class Profile:
    """An application profile: the weight of a found window, a false alarm and a missed window."""

    name: str
    tp: float
    fp: float
    fn: float


# NAB's config/profiles.json (the default when a data set does not carry it)
PROFILES = {"standard": Profile("standard", 1.0, 0.11, 1.0),
            "reward_low_FP_rate": Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
            "reward_low_FN_rate": Profile("reward_low_FN_rate", 1.0, 0.11, 2.0)}


def load_profiles(path: Path | None) -> dict[str, Profile]:
    """Profiles from NAB's profiles.json ({name: {"CostMatrix": {tpWeight, fpWeight, fnWeight}}}), or the defaults."""
    if path is None or not Path(path).is_file():
        return dict(PROFILES)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return {name: Profile(name, float(v["CostMatrix"]["tpWeight"]), float(v["CostMatrix"]["fpWeight"]),
                              float(v["CostMatrix"]["fnWeight"])) for name, v in raw.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a NAB profiles file ({exc}); fix it or remove it to use NAB's defaults") from None


def probation_rows(n: int) -> float:
    """Rows at the start of a series that are not scored (NAB: 15 %, at most 750)."""
    return min(math.floor(PROBATION_SHARE * n), PROBATION_CAP)


def scaled_sigmoid(position):
    """NAB's reward curve: 2 / (1 + e^(5 y)) - 1, and -1 from 3 window widths on."""
    y = np.asarray(position, dtype=np.float64)
    return np.where(y >= 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0)


def window_rows(timestamps, windows) -> list[tuple[int, int]]:
    """(first, last) row of each labelled window [start, end] (timestamps inclusive); empty windows dropped."""
    times = pd.to_datetime(pd.Series(list(timestamps))).to_numpy()
    spans = []
    for start, end in windows:
        first = int(np.searchsorted(times, np.datetime64(pd.Timestamp(start)), "left"))
        last = int(np.searchsorted(times, np.datetime64(pd.Timestamp(end)), "right")) - 1
        if first <= last:
            spans.append((first, last))
    return spans


@dataclass
class SeriesScore:
    """One series scored under one profile: the raw score and what made it."""

    raw: float
    windows: int  # labelled windows
    found: int  # windows with a detection (outside the probationary period)
    missed: int
    false_alarms: int  # detections outside every window
    scorable: int  # windows with at least one row after the probationary period
    positions: list = field(default_factory=list)  # per found window: relative position of its first detection


def score_detections(detected: np.ndarray, spans: list[tuple[int, int]], profile: Profile,
                     probation: float | None = None) -> SeriesScore:
    """NAB's raw score of boolean detections (one per row) against labelled windows (row spans)."""
    detected = np.asarray(detected, dtype=bool)
    n = len(detected)
    probation = probation_rows(n) if probation is None else probation
    rows = np.arange(n)
    live = detected & (rows >= probation)
    inside = np.zeros(n, bool)
    found_total, positions, missed, scorable = 0.0, [], 0, 0
    for first, last in spans:
        inside[first:last + 1] = True
        if last < probation:
            continue  # NAB: a window wholly in the probationary period is not scored
        scorable += 1
        hits = np.flatnonzero(live[first:last + 1])
        if len(hits):
            width = last - first + 1
            position = -(width - hits[0]) / width
            found_total += profile.tp * float(scaled_sigmoid(position) / scaled_sigmoid(-1.0))
            positions.append(round(hits[0] / width, 4))
        else:
            missed += 1
    false_rows = np.flatnonzero(live & ~inside)
    penalty = profile.fp * float(np.sum(scaled_sigmoid(_past_window(false_rows, spans))))
    raw = found_total - profile.fn * missed + penalty
    return SeriesScore(raw, len(spans), len(positions), missed, len(false_rows), scorable, positions)


def _past_window(rows: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """For rows outside every window: distance past the preceding window's end, in window widths (3 = none)."""
    position = np.full(len(rows), 3.0)
    for first, last in spans:
        after = rows > last
        if last > first:
            position[after] = np.abs(rows[after] - last) / (last - first)
        else:
            position[after] = 3.0  # NAB divides by zero here; a one-row window has no width to scale by
    return position


def detections(scores, threshold: float) -> np.ndarray:
    """Rows whose anomaly score reaches the threshold."""
    return np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf) >= threshold


def null_score(series: list[SeriesScore], profile: Profile) -> float:
    """The null detector's raw score: every scorable window missed."""
    return -profile.fn * sum(s.scorable for s in series)


def perfect_score(series: list[SeriesScore], profile: Profile) -> float:
    """The perfect detector's raw score: every labelled window found at its first row."""
    return profile.tp * sum(s.windows for s in series)


def normalised(series: list[SeriesScore], profile: Profile) -> float | None:
    """100 * (raw - null) / (perfect - null) over the given series; None when there is no window to find."""
    null, perfect = null_score(series, profile), perfect_score(series, profile)
    if perfect == null:
        return None
    return 100.0 * (sum(s.raw for s in series) - null) / (perfect - null)
