"""A numeric expert for series: flags anomalous points and windows, with scores.

Per column: fill missing values, remove the trend (rolling median), remove the seasonal profile
when autocorrelation finds a period, then score each point by its robust z-score (median/MAD) of
the residual. Points over the threshold are grouped into windows. Scores are mapped to [0, 1]
with 0.5 at the threshold, as for the vision expert. Measured on NAB: benchmarks/results/inputs.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

THRESHOLD = 6.0  # robust z-score at which a point counts as anomalous (score 0.5)
TAIL_QUANTILE = None  # if set, the scale is at least what this quantile of |residual| implies
MAX_WINDOWS = 2  # the strongest windows reported per column (measured on NAB)
MIN_ROWS = 16
GAP_DIVISOR = 50  # flags closer than 2 % of the series belong to one window


class Window(NamedTuple):
    """A run of anomalous rows: row positions (inclusive), score, and times when the index has them."""

    start: int
    end: int
    score: float
    column: str
    start_time: str | None = None
    end_time: str | None = None


class FlaggedPoint(NamedTuple):
    """One anomalous row of one column."""

    row: int
    column: str
    value: float
    score: float
    time: str | None = None


@dataclass
class SeriesReport:
    """What the series expert found: overall score in [0, 1] (0.5 = threshold) and where."""

    score: float
    anomalous: bool
    windows: list[Window] = field(default_factory=list)
    points: list[FlaggedPoint] = field(default_factory=list)
    threshold: float = THRESHOLD
    periods: dict[str, int | None] = field(default_factory=dict)
    method: str = "robust residual z-score (trend, seasonality removed)"

    def summary(self, limit: int = 5) -> str:
        """A few lines for a person or a model."""
        verdict = "anomalous" if self.anomalous else "no anomaly found"
        lines = [f"series expert: {verdict}, score {self.score:.2f} (0.5 = threshold), {len(self.windows)} window(s)"]
        for w in sorted(self.windows, key=lambda w: -w.score)[:limit]:
            where = f"{w.start_time} to {w.end_time}" if w.start_time else f"rows {w.start} to {w.end}"
            lines.append(f"- {w.column}: {where}, score {w.score:.2f}")
        return "\n".join(lines)


def detect(frame: pd.DataFrame, *, threshold: float = THRESHOLD, max_windows: int = MAX_WINDOWS,
           tail_quantile: float | None = TAIL_QUANTILE, max_points: int = 50) -> SeriesReport:
    """Score every numeric column of a series and collect the strongest anomalous windows and points."""
    windows, points, periods = [], [], {}
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        z, period = robust_scores(values, tail_quantile)
        periods[str(column)] = period
        found = sorted(_windows(z, threshold, str(column), frame.index, period), key=lambda w: -w.score)
        windows += sorted(found[:max_windows], key=lambda w: w.start)
        points += _points(z, values, threshold, str(column), frame.index)
    points = sorted((p for p in points if _inside(p, windows)), key=lambda p: -p.score)[:max_points]
    score = max((w.score for w in windows), default=0.0)
    return SeriesReport(score, score >= 0.5, windows, points, threshold, periods)


def robust_scores(values: np.ndarray, tail_quantile: float | None = None) -> tuple[np.ndarray, int | None]:
    """Per-point robust z-scores of the de-trended, de-seasoned series, and the period found.

    tail_quantile makes heavy-tailed series (routine spikes) less alarming: the scale is then at
    least the one a normal distribution would need to reach that quantile of |residual|.
    """
    filled = pd.Series(values).interpolate(limit_direction="both").to_numpy()
    if len(filled) < MIN_ROWS or not np.isfinite(filled).all():
        return np.zeros(len(values)), None
    period = find_period(filled)
    trend = rolling_median(filled, period or max(7, len(filled) // 40), period)
    residual = filled - trend
    if period:
        residual -= seasonal_profile(residual, period)
    centred = residual - np.median(residual)
    spread = 1.4826 * np.median(np.abs(centred))
    low, high = np.percentile(filled, [1, 99])
    tail = np.quantile(np.abs(centred), tail_quantile) / _normal_quantile(tail_quantile) if tail_quantile else 0.0
    scale = max(spread, tail, 0.01 * (high - low), 1e-9 * max(1.0, np.abs(filled).max()))  # noise-free data
    z = np.abs(centred) / scale
    z[np.isnan(values)] = 0.0
    return z, period


def find_period(values: np.ndarray, min_lag: int = 4, min_strength: float = 0.3) -> int | None:
    """The strongest repeating lag by autocorrelation (FFT), or None when nothing repeats clearly."""
    n = len(values)
    if n < 3 * min_lag:
        return None
    detrended = values - rolling_median(values, max(7, n // 3))  # longer than any lag searched: keeps the cycle
    detrended = detrended - detrended.mean()
    spectrum = np.fft.rfft(detrended, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: n // 3]
    if acf[0] <= 0:
        return None
    acf /= acf[0]
    peaks = np.flatnonzero((acf[1:-1] > acf[:-2]) & (acf[1:-1] >= acf[2:])) + 1
    peaks = peaks[(peaks >= min_lag) & (acf[peaks] >= min_strength)]
    return int(peaks[np.argmax(acf[peaks])]) if len(peaks) else None


def rolling_median(values: np.ndarray, window: int, period: int | None = None) -> np.ndarray:
    """Centred rolling median, padded so the ends are not biased; long series use block medians.

    The padding continues the cycle when a period is given (a half window cuts a cycle unevenly),
    and mirrors the series otherwise.
    """
    n = len(values)
    block = max(1, n // 20_000)
    if block > 1:
        coarse = np.median(values[: n // block * block].reshape(-1, block), axis=1)
        smooth = rolling_median(coarse, max(3, window // block))
        return np.interp(np.arange(n), np.arange(len(coarse)) * block + (block - 1) / 2, smooth)
    window = int(min(max(3, window), n))
    pad = min(window // 2, n - 1)
    if period and 2 * period <= n and pad <= period:
        padded = np.concatenate([values[period - pad: period], values, values[n - period: n - period + pad]])
    else:
        padded = np.pad(values, pad, mode="reflect")
    smooth = pd.Series(padded).rolling(window, center=True, min_periods=1).median().to_numpy()
    return smooth[pad: pad + n]


def seasonal_profile(residual: np.ndarray, period: int) -> np.ndarray:
    """The median residual at each phase of the period, repeated over the series."""
    cycles = len(residual) // period
    if cycles < 2:
        return np.zeros_like(residual)
    profile = np.median(residual[: cycles * period].reshape(cycles, period), axis=0)
    return np.resize(profile - np.median(profile), len(residual))


def _normal_quantile(q: float) -> float:
    """|z| of a standard normal exceeded with probability 1 - q."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + q / 2))


def to_score(z: np.ndarray | float, threshold: float = THRESHOLD) -> np.ndarray | float:
    """A z-score as a score in [0, 1): 0.5 at the threshold."""
    return z**2 / (z**2 + threshold**2)


def _windows(z: np.ndarray, threshold: float, column: str, index: pd.Index, period: int | None) -> list[Window]:
    rows = np.flatnonzero(z > threshold)
    if not len(rows):
        return []
    gap = max(3, len(z) // GAP_DIVISOR)  # flags closer than this belong to one window
    breaks = np.flatnonzero(np.diff(rows) > gap)
    starts, ends = rows[np.r_[0, breaks + 1]], rows[np.r_[breaks, len(rows) - 1]]
    return [Window(int(s), int(e), round(float(to_score(z[s:e + 1].max(), threshold)), 4), column,
                   _time(index, s), _time(index, e)) for s, e in zip(starts, ends, strict=True)]


def _points(z: np.ndarray, values: np.ndarray, threshold: float, column: str, index: pd.Index) -> list[FlaggedPoint]:
    rows = np.flatnonzero(z > threshold)
    return [FlaggedPoint(int(r), column, float(values[r]), round(float(to_score(z[r], threshold)), 4), _time(index, r))
            for r in rows]


def _inside(point: FlaggedPoint, windows: list[Window]) -> bool:
    return any(w.column == point.column and w.start <= point.row <= w.end for w in windows)


def _time(index: pd.Index, row: int) -> str | None:
    if isinstance(index, pd.DatetimeIndex):
        return str(index[row])
    return None
