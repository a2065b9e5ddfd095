"""From raw per-row anomaly scores to calibrated, causal alarms: one early alarm per event.

- likelihood_z: Numenta's "anomaly likelihood" (Ahmad et al. 2017, "Unsupervised real-time
  anomaly detection for streaming data"): the short-term average of a raw score against the mean
  and spread of all earlier short-term averages, as a Gaussian z (the likelihood is Phi(z)). A raw
  score that is often high in this series (a bursty machine) stops being surprising; the same
  value in a quiet series is. Each row is judged from the rows before it only.
- new_extreme: how far a value lies beyond the range of every earlier value, in units of that
  range (the "spatial anomaly" rule of Numenta's NAB detector: beyond 5 % of the range counts).
- alarms: an alarm where the z passes the threshold after the learning period, then quiet for a
  while, so one event raises one alarm (NAB rewards the earliest detection in a window and
  charges every further one outside it). A much stronger surprise within the quiet period (by
  the escalation factor over the alarm that began it) is a new event and raises its own alarm:
  otherwise a faint alarm just before a large event would hide the event.

Own code rather than a library: these are a few lines of pandas, and no maintained package offers
the causal (expanding, never looking ahead) form.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RELATIVE_FLOOR = 1e-3  # the spread is never taken below this share of the typical score (noise-free series)


def likelihood_z(raw: np.ndarray, learn_rows: int, smooth_rows: int) -> np.ndarray:
    """Per row: the mean raw score of the last smooth_rows rows, as a z against all earlier such means.

    Rows before half the learning period (too little history) get 0. Missing raw scores count as 0.
    """
    scores = pd.Series(np.nan_to_num(np.asarray(raw, dtype=np.float64), nan=0.0, posinf=0.0))
    recent = scores.rolling(max(1, smooth_rows), min_periods=1).mean()
    before = recent.shift(1).expanding(min_periods=max(2, learn_rows // 2))
    mean = np.nan_to_num(before.mean().to_numpy())
    typical = float(np.median(np.abs(scores.to_numpy()[:max(learn_rows, 2)])))
    floor = RELATIVE_FLOOR * (np.abs(mean) + typical) + 1e-12
    spread = np.maximum(np.nan_to_num(before.std().to_numpy()), floor)
    return np.where(before.count().to_numpy() >= max(2, learn_rows // 2), (recent.to_numpy() - mean) / spread, 0.0)


def new_extreme(values: np.ndarray) -> np.ndarray:
    """Per row: how far the value lies beyond [min, max] of all earlier values, in units of max - min (0 inside)."""
    series = pd.Series(np.asarray(values, dtype=np.float64))
    high, low = series.cummax().shift(1).to_numpy(), series.cummin().shift(1).to_numpy()
    beyond = np.nan_to_num(np.maximum(series.to_numpy() - high, low - series.to_numpy()), nan=0.0)
    span = np.nan_to_num(high - low, nan=0.0)
    scale = np.maximum(span, 1e-9 * np.maximum(np.abs(np.nan_to_num(high)), 1.0))  # a constant start: any change counts
    return np.clip(np.maximum(beyond, 0.0) / scale, 0.0, 1e6)


def alarms(z: np.ndarray, threshold: float, learn_rows: int, quiet_rows: int,
           escalation: float = np.inf) -> np.ndarray:
    """Rows that raise an alarm: z over the threshold after the learning period, not within quiet_rows of the last
    unless z exceeds the last alarm's z escalation times (a new, stronger event)."""
    raised = np.zeros(len(z), bool)
    last, level = -(10**12), np.inf
    for row in np.flatnonzero(z > threshold):
        if row >= learn_rows and (row - last > quiet_rows or z[row] > escalation * level):
            raised[row], last, level = True, row, z[row]
    return raised
