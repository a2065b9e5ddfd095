"""The expected course of a series column: trend, seasonal profile and robust residual z-scores.

Trend = centred rolling median over one period (or n/40 rows), padded by continuing the cycle so
the ends are not biased; period found by autocorrelation (FFT); seasonal profile = median residual
per phase; z = |residual| / robust scale (median/MAD, floored at 1 % of the 1-99 % range for
noise-free data). Used by the offline mode (it sees the whole upload) and for the expected band
that the verdict and the plot show.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

MIN_ROWS = 16


class Profile(NamedTuple):
    """Per row: the expected value, the robust z-score of the residual; and the scale and period."""

    expected: np.ndarray
    z: np.ndarray
    scale: float
    period: int | None


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """Missing values bridged by linear interpolation (the ends by the nearest value)."""
    return pd.Series(values, dtype="float64").interpolate(limit_direction="both").to_numpy()


def expected_profile(values: np.ndarray) -> Profile:
    """Trend + seasonal profile of a column, and each row's robust z-score against it."""
    filled = fill_gaps(values)
    if len(filled) < MIN_ROWS or not np.isfinite(filled).all():
        return Profile(np.nan_to_num(filled), np.zeros(len(values)), 1.0, None)
    period = find_period(filled)
    expected = rolling_median(filled, period or max(7, len(filled) // 40), period)
    if period:
        expected = expected + seasonal_profile(filled - expected, period)
    residual = filled - expected
    centre = np.median(residual)
    low, high = np.percentile(filled, [1, 99])
    spread = 1.4826 * np.median(np.abs(residual - centre))
    scale = max(spread, 0.01 * (high - low), 1e-9 * max(1.0, np.abs(filled).max()))
    z = np.abs(residual - centre) / scale
    z[np.isnan(values)] = 0.0
    return Profile(expected + centre, z, float(scale), period)


def robust_scores(values: np.ndarray) -> tuple[np.ndarray, int | None]:
    """Per-point robust z-scores of the de-trended, de-seasoned series, and the period found."""
    profile = expected_profile(values)
    return profile.z, profile.period


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
