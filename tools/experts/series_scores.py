"""Per-row anomaly scores of a series: how unlike anything seen before each stretch of it is.

The core is the matrix profile (Yeh et al. 2016) without z-normalisation, so level and amplitude
count as well as shape: for every subsequence of m rows, the distance to its nearest neighbour.
Short lengths (4-8 rows) see spikes and new combinations of values; longer ones (32-128 rows)
see level shifts, changed variance and broken cycles. Columns are profiled one by one and jointly (a
neighbour must match in every column at once, so a broken relation between columns shows even when
each column alone looks familiar).

- causal: the *left* profile (neighbours only among earlier rows) as an anomaly likelihood
  (series_likelihood.likelihood_z: its short-term average against all earlier ones), together with
  the new-extreme rule (a value beyond the range of everything before it by more than a tolerance).
  Nothing after a row is used, so appending rows never changes an earlier score. After a learning
  period, a row over the threshold raises an alarm, then alarms are quiet for a while (one event,
  one alarm) unless a far stronger surprise comes (a new event), as NAB's detectors are judged.
- offline: the causal z seen from both sides (rows after the learning period judged from the rows
  before them, so alarms come at the onset; the learning rows from the rows after them), kept
  over the threshold only where the two-sided view confirms it: the two-sided profile (neighbours
  anywhere in the upload; a discord has none close), averaged over a few rows, as a robust z
  against the whole upload's median and spread, or the residual z against the expected course
  (trend, season: series_profile), reaching offline_confirm near the stretch. The confirmation is
  chosen so that generated clean series come back clean (the offline mode answers people).

The kernel is a few lines of numba (cached on disk) rather than stumpy: stumpy returns the left
neighbour's index but not its distance, and compiles for about 10 s in every new process.
Settings were chosen by leave-one-group-out cross-validation on NAB groups:
benchmarks/results/series.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tools.experts.series_likelihood import alarms, likelihood_z, new_extreme  # noqa: F401 (alarms: re-exported)
from tools.experts.series_profile import expected_profile, fill_gaps


@dataclass(frozen=True)
class ScoreSettings:
    """How series are scored; the defaults are the cross-validated choice (benchmarks/results/series.md)."""

    lengths: tuple[int, ...] = (4,)  # subsequence lengths m of the matrix profile, in rows, shortest first
    long_weight: float = 0.5  # the z of every length after the first counts this much (they see slower, rarer change)
    smooth_rows: int = 3  # causal: the likelihood judges the mean profile of the last rows
    causal_threshold: float = 2.5  # likelihood z at which a causal alarm is raised (score 0.5)
    extreme_tolerance: float = 0.05  # causal: a value this share of the earlier range beyond it counts as the threshold
    offline_lengths: tuple[int, ...] = (64,)  # offline: subsequence lengths of the two-sided profile (confirmation)
    offline_threshold: float = 2.5  # offline: likelihood z (seen from both sides) at which a row is flagged (score 0.5)
    offline_confirm: float = 6.0  # offline: ... when the two-sided discord / residual z near it reaches this
    confirm_rows: int = 128  # offline: "near": within this many rows of the run over the threshold
    offline_smooth_rows: int = 5  # offline: the profile is averaged over this many rows around each row
    quiet_share: float = 0.2  # after an alarm, no new one for this share of the learning period ...
    escalation: float = 10.0  # ... unless the z is this many times the z of the alarm that began the quiet
    learn_share: float = 0.15  # causal learning period: this share of the rows ...
    learn_cap: int = 750  # ... but at most this many rows (NAB's probationary period)


DEFAULT = ScoreSettings()
MAX_PROFILE_ROWS = 20_000  # longer series are profiled on block means (the profile costs rows^2)


def block_size(n: int) -> int:
    """Rows per block mean so that at most MAX_PROFILE_ROWS blocks are profiled."""
    return max(1, math.ceil(n / MAX_PROFILE_ROWS))


def block_means(values: np.ndarray, block: int) -> np.ndarray:
    """Means of consecutive blocks of rows (the last block may be shorter); NaN where a block has no value."""
    padded = np.full(math.ceil(len(values) / block) * block, np.nan)
    padded[: len(values)] = values
    with np.errstate(all="ignore"):
        table = padded.reshape(-1, block)
        counts = np.isfinite(table).sum(axis=1)
        return np.where(counts > 0, np.nansum(table, axis=1) / np.maximum(counts, 1), np.nan)


def learning_rows(n: int, settings: ScoreSettings = DEFAULT) -> int:
    """Rows a causal detector only learns from (NAB's probationary period: 15 % of n, at most 750)."""
    return int(min(math.floor(settings.learn_share * n), settings.learn_cap))


def _kernel():
    from numba import njit

    @njit(cache=True)
    def left_profile(x, m):  # pragma: no cover - compiled
        """Squared distance of each subsequence to its nearest earlier, non-overlapping one."""
        n, d = x.shape[0] - m + 1, x.shape[1]
        best = np.full(max(n, 0), np.inf)
        for lag in range(m, n):  # neighbours at least m rows back: no trivial self-match
            total = 0.0
            for t in range(m):
                for c in range(d):
                    total += (x[lag + t, c] - x[t, c]) ** 2
            best[lag] = min(best[lag], total)
            for i in range(lag + 1, n):
                j = i - lag
                for c in range(d):
                    total += (x[i + m - 1, c] - x[j + m - 1, c]) ** 2 - (x[i - 1, c] - x[j - 1, c]) ** 2
                best[i] = min(best[i], max(total, 0.0))
        return best

    return left_profile


_LEFT_PROFILE = None


def left_profile(values: np.ndarray, m: int) -> np.ndarray:
    """Per row t: distance of rows t-m+1..t to the nearest earlier stretch (NaN before m rows or none)."""
    global _LEFT_PROFILE
    if _LEFT_PROFILE is None:
        _LEFT_PROFILE = _kernel()
    x = np.ascontiguousarray(values, dtype=np.float64).reshape(len(values), -1)
    out = np.full(len(x), np.nan)
    if len(x) >= 2 * m:
        best = np.sqrt(_LEFT_PROFILE(x, m))
        out[m - 1:] = np.where(np.isfinite(best), best, np.nan)
    return out


def right_profile(values: np.ndarray, m: int) -> np.ndarray:
    """Per row t: distance of rows t..t+m-1 to the nearest later stretch (the left profile reversed)."""
    return left_profile(np.asarray(values)[::-1], m)[::-1]


def discord(profile: np.ndarray, smooth_rows: int) -> np.ndarray:
    """Offline z: the profile averaged over a few rows around each row, against the whole series' median and robust spread."""
    smooth = pd.Series(profile).rolling(smooth_rows, center=True, min_periods=1).mean().to_numpy()
    finite = smooth[np.isfinite(smooth)]
    if not len(finite):
        return np.zeros(len(profile))
    centre = np.median(finite)
    spread = max(1.4826 * np.median(np.abs(finite - centre)), 1e-3 * abs(centre), 1e-12)
    return np.nan_to_num((smooth - centre) / spread)


def two_sided_profile(values: np.ndarray, m: int) -> np.ndarray:
    """Per row t: distance of the stretch ending at t to its nearest neighbour before or after it."""
    return np.fmin(left_profile(values, m), _shift(right_profile(values, m), m - 1))


def standardised(values: np.ndarray, learn_rows: int | None) -> np.ndarray:
    """A column on a common scale (for the joint profile), from the learning rows only when causal."""
    filled = fill_gaps(values)
    part = filled[:learn_rows] if learn_rows else filled
    spread = np.std(part) if len(part) > 1 else 0.0
    return (filled - np.mean(part)) / (spread if spread > 0 else 1.0)


def causal_z(columns: dict[str, np.ndarray], learn_rows: int, settings: ScoreSettings = DEFAULT,
             threshold: float | None = None) -> dict[str, np.ndarray]:
    """Per column (and `*joint*` for several columns): the highest likelihood z over the lengths and the new-extreme rule.

    A new extreme beyond the tolerance scores `threshold` (default: the causal threshold).
    """
    threshold = settings.causal_threshold if threshold is None else threshold
    result = {}
    for name, values in _profiled(columns, learn_rows).items():
        zs = [weight * likelihood_z(left_profile(values, m), learn_rows, settings.smooth_rows)
              for m, weight in _weighted_lengths(settings, len(values))]
        if name != JOINT:  # the joint stretch's range is that of standardised columns: each column is checked alone
            zs.append(threshold * new_extreme(values) / settings.extreme_tolerance)
        result[name] = np.max(zs, axis=0) if zs else np.zeros(len(values))
    return result


def offline_z(columns: dict[str, np.ndarray], learn_rows: int, settings: ScoreSettings = DEFAULT) -> dict[str, np.ndarray]:
    """Per column (and `*joint*`): the causal z seen from both sides, kept over the threshold only where confirmed.

    Rows after the learning period are judged from the rows before them (alarms at the onset, as
    causal); the learning rows from the rows after them (the series reversed). A stretch over the
    threshold counts only where the two-sided discord z near it (no close neighbour anywhere in
    the upload) reaches offline_confirm: what is new to the past but common later is no anomaly.
    """
    threshold = settings.offline_threshold
    forward = causal_z(columns, learn_rows, settings, threshold)
    backward = causal_z({name: values[::-1] for name, values in columns.items()}, learn_rows, settings, threshold)
    support = discord_z(columns, settings)
    result = {}
    lag = max(settings.lengths) + settings.smooth_rows - 2  # a reversed z covers the rows after its own: align
    for name, z in forward.items():
        both = np.where(np.arange(len(z)) < learn_rows, np.nan_to_num(_shift(backward[name][::-1], lag)), z)
        result[name] = confirmed(both, support[name], threshold, settings.offline_confirm, settings.confirm_rows)
    return result


def confirmed(z: np.ndarray, support: np.ndarray, threshold: float, confirm: float, pad: int) -> np.ndarray:
    """z capped at the threshold in each run over it whose support (within pad rows) stays below confirm."""
    near = pd.Series(support).rolling(2 * pad + 1, center=True, min_periods=1).max().to_numpy()
    over = np.r_[False, z > threshold, False]
    edges = np.flatnonzero(np.diff(over.astype(np.int8)))
    capped = z.copy()
    for first, end in zip(edges[::2], edges[1::2], strict=True):
        if near[first:end].max() < confirm:
            capped[first:end] = threshold
    return capped


def discord_z(columns: dict[str, np.ndarray], settings: ScoreSettings = DEFAULT) -> dict[str, np.ndarray]:
    """Per column (and `*joint*`): the highest of the discord z (all offline lengths) and the residual z, per row."""
    result = {}
    for name, values in _profiled(columns, None).items():
        zs = [discord(two_sided_profile(values, m), settings.offline_smooth_rows)
              for m in settings.offline_lengths if 2 * m <= len(values)]
        if name != JOINT:
            zs.append(expected_profile(columns[name]).z)
        result[name] = np.max(zs, axis=0) if zs else np.zeros(len(values))
    return result


def _weighted_lengths(settings: ScoreSettings, rows: int) -> list[tuple[int, float]]:
    """(length, weight) for the lengths that fit twice into the series; the first length has weight 1."""
    return [(m, 1.0 if i == 0 else settings.long_weight) for i, m in enumerate(settings.lengths) if 2 * m <= rows]


JOINT = "*joint*"


def _profiled(columns: dict[str, np.ndarray], learn_rows: int | None) -> dict[str, np.ndarray]:
    """The columns to profile: each alone (gaps bridged) and, for 2 to 8 columns, all together."""
    out = {name: fill_gaps(values) for name, values in columns.items()}
    if 2 <= len(columns) <= 8:
        out[JOINT] = np.column_stack([standardised(v, learn_rows) for v in columns.values()])
    return out


def _shift(values: np.ndarray, rows: int) -> np.ndarray:
    """Right-profile values moved from a stretch's first row to its last row (aligned with the left)."""
    return np.concatenate([np.full(rows, np.nan), values[: len(values) - rows]]) if rows else values


def to_score(z, threshold: float):
    """A z-score as a score in [0, 1): 0 at or below 0, 0.5 at the threshold."""
    positive = np.maximum(np.asarray(z, dtype=np.float64), 0.0)
    return positive**2 / (positive**2 + threshold**2)
