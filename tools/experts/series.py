"""The series expert: flags anomalous windows of a series, per column, with per-row scores.

Two modes. `offline` sees the whole upload (a stretch new to the rows before it, or for the first
rows to those after it, and unlike any other in the upload); `causal` judges
every row from the rows before it only, after a learning period, as NAB's detectors are judged
(appending rows never changes an earlier score): a stretch unlike anything before it, or a value
beyond everything before it. Both report one window per anomalous stretch, starting where it
starts. Scores are in [0, 1] with 0.5 at the threshold, as for the vision expert. How it scores: tools/experts/series_scores.py;
measured on NAB: benchmarks/results/series.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from tools.experts.series_profile import MIN_ROWS, expected_profile, find_period, rolling_median  # noqa: F401
from tools.experts.series_scores import (
    DEFAULT,
    JOINT,
    ScoreSettings,
    alarms,
    block_means,
    block_size,
    causal_z,
    learning_rows,
    offline_z,
    to_score,
)

MODES = ("offline", "causal")
BAND_Z = 4.0  # the expected band is the expected course +- this many robust spreads
JOINT_NAME = "all columns together"
THRESHOLD = DEFAULT.offline_threshold  # the offline mode's z at score 0.5 (kept for callers of the old name)


class Window(NamedTuple):
    """A run of anomalous rows of one column: row positions (inclusive), score, times, the peak and its expected band."""

    start: int
    end: int
    score: float
    column: str
    start_time: str | None = None
    end_time: str | None = None
    peak_row: int | None = None
    peak_value: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None

    def where(self) -> str:
        """The window in the series' own terms: times when the index has them, else row numbers."""
        return f"{self.start_time} to {self.end_time}" if self.start_time else f"rows {self.start} to {self.end}"

    def to_region(self) -> dict:
        """The window as a machine-readable region (ask --json)."""
        return {"kind": "series_window", "column": self.column, "start": self.start_time or self.start,
                "end": self.end_time or self.end, "start_row": self.start, "end_row": self.end,
                "score": self.score, "peak_row": self.peak_row, "peak_value": self.peak_value,
                "expected_low": self.expected_low, "expected_high": self.expected_high,
                "where": f"{self.column}: {self.where()}", "box": None}


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
    method: str = ("matrix profile: anomaly likelihood and new extremes (offline: seen from both sides, confirmed "
                   "by the two-sided discord)")
    mode: str = "offline"
    learn_rows: int = 0
    row_scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # per column, [0, 1]
    alarm_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)  # where an alarm starts
    bands: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)  # (low, high)

    def summary(self, limit: int = 5) -> str:
        """A few lines for a person or a model, in the series' terms."""
        verdict = "anomalous" if self.anomalous else "no anomaly found"
        lines = [f"series expert ({self.mode} mode): {verdict}, score {self.score:.2f} (0.5 = threshold), "
                 f"{len(self.windows)} window(s)"]
        for w in sorted(self.windows, key=lambda w: -w.score)[:limit]:
            lines.append(f"- {describe_window(w)}")
        if len(self.windows) > limit:
            lines.append(f"- and {len(self.windows) - limit} more window(s)")
        return "\n".join(lines)

    def regions(self) -> list[dict]:
        """Every flagged window as a region dict, strongest first."""
        return [w.to_region() for w in sorted(self.windows, key=lambda w: -w.score)]

    def decision_scores(self) -> np.ndarray:
        """One score per row in [0, 1], at least 0.5 exactly where an alarm starts (NAB's results layout)."""
        rows = len(self.alarm_rows)
        best = np.max(list(self.row_scores.values()), axis=0) if self.row_scores else np.zeros(rows)
        return np.where(self.alarm_rows, np.maximum(best, 0.5), np.minimum(best, 0.4999))


def describe_window(w: Window) -> str:
    """One line: column, when, the peak against the expected band, and the score."""
    text = f"{w.column}: {w.where()}"
    if w.peak_value is not None and w.expected_low is not None:
        text += (f", peak {_number(w.peak_value)} where {_number(w.expected_low)} to {_number(w.expected_high)} "
                 "was expected")
    return text + f", score {w.score:.2f}"


def _number(value: float) -> str:
    return f"{value:.4g}"


def detect(frame: pd.DataFrame, *, mode: str = "offline", learn_rows: int | None = None,
           settings: ScoreSettings = DEFAULT, max_points: int = 50) -> SeriesReport:
    """Score every numeric column and collect the anomalous windows (as many as the data shows).

    learn_rows (causal mode): rows only learned from; default NAB's rule (15 % of the rows, at most 750).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    columns = {str(c): pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) for c in frame.columns}
    n = len(frame)
    learn = learning_rows(n, settings) if learn_rows is None else int(learn_rows)  # the likelihood's history
    first = learn if mode == "causal" else 0  # offline judges the learning rows from the rows after them
    if n < MIN_ROWS or not columns:
        return SeriesReport(0.0, False, mode=mode, learn_rows=first, alarm_rows=np.zeros(n, bool))
    threshold = settings.causal_threshold if mode == "causal" else settings.offline_threshold
    z = _row_z(columns, mode, learn, settings, n)
    profiles = {name: expected_profile(values) for name, values in columns.items()}
    quiet = max(1, int(settings.quiet_share * learn))
    report = SeriesReport(0.0, False, threshold=threshold, mode=mode, learn_rows=first,
                          periods={name: p.period for name, p in profiles.items()},
                          bands={name: (p.expected - BAND_Z * p.scale, p.expected + BAND_Z * p.scale)
                                 for name, p in profiles.items()})
    report.alarm_rows = np.zeros(n, bool)
    for name, column_z in z.items():
        column_z = np.where(missing, 0.0, column_z) if (missing := _missing(name, columns, n)).any() else column_z
        z_after = np.where(np.arange(n) >= first, column_z, 0.0)
        report.row_scores[name] = to_score(z_after, threshold)
        raised = alarms(column_z, threshold, first, quiet, settings.escalation)
        report.alarm_rows |= raised
        lead = settings.smooth_rows - 1  # the rows the alarm's surprise averaged
        spans = [(max(first, a - lead), b) for a, b in _runs(z_after > threshold, quiet) if raised[a:b + 1].any()]
        unusual = _outside_band(name, columns, report.bands) if mode == "offline" else None
        spans = [_trimmed(a, b, unusual) for a, b in spans] if unusual is not None else spans
        report.windows += [_window(name, a, b, z_after, threshold, frame, columns, report.bands) for a, b in spans]
        report.points += _points(name, z_after > threshold if unusual is None else unusual, z_after, threshold,
                                 frame, columns, report.windows)
    report.windows = sorted(_without_echoes(report.windows), key=lambda w: (w.start, w.column))
    report.points = sorted(report.points, key=lambda p: -p.score)[:max_points]
    top = max((w.score for w in report.windows), default=0.0)
    rest = max((float(s.max()) for s in report.row_scores.values()), default=0.0)
    report.score = round(top if report.windows else min(rest, 0.4999), 4)
    report.anomalous = bool(report.windows)
    return report


def _row_z(columns: dict, mode: str, learn: int, settings: ScoreSettings, n: int) -> dict[str, np.ndarray]:
    """Per column, per row z; series over MAX_PROFILE_ROWS are scored on block means and spread back to rows."""
    block = block_size(n)
    if block > 1:
        columns = {name: block_means(values, block) for name, values in columns.items()}
    z = (causal_z if mode == "causal" else offline_z)(columns, learn // block, settings)
    return {name: np.repeat(values, block)[:n] for name, values in z.items()} if block > 1 else z


def _without_echoes(windows: list[Window]) -> list[Window]:
    """Joint windows only where no single column shows the anomaly itself (a broken relation between columns)."""
    alone = [w for w in windows if w.column != JOINT_NAME]
    return alone + [j for j in windows if j.column == JOINT_NAME
                    and not any(w.start <= j.end and j.start <= w.end for w in alone)]


def _missing(name: str, columns: dict, n: int) -> np.ndarray:
    """Rows where the column has no value (bridged for scoring, never flagged themselves)."""
    return np.isnan(columns[name]) if name in columns else np.zeros(n, bool)


def _runs(over: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """(first, last) row of each run of flagged rows; flags closer than `gap` rows belong to one run."""
    rows = np.flatnonzero(over)
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) > gap)
    return list(zip(rows[np.r_[0, breaks + 1]].tolist(), rows[np.r_[breaks, len(rows) - 1]].tolist(), strict=True))


def _window(name, start, end, z, threshold, frame, columns, bands) -> Window:
    peak = int(start + np.argmax(z[start:end + 1]))
    shown = name if name != JOINT else JOINT_NAME
    value, low, high = None, None, None
    if name in columns:
        deviation = np.abs(columns[name][start:end + 1] - (bands[name][0][start:end + 1] + bands[name][1][start:end + 1]) / 2)
        peak_value_row = int(start + np.nanargmax(deviation)) if np.isfinite(deviation).any() else peak
        value = _round(columns[name][peak_value_row])
        low, high = _round(bands[name][0][peak_value_row]), _round(bands[name][1][peak_value_row])
        peak = peak_value_row
    score = round(float(to_score(z[start:end + 1].max(), threshold)), 4)
    return Window(start, end, score, shown, _time(frame.index, start), _time(frame.index, end), peak, value, low, high)


def _outside_band(name: str, columns: dict, bands: dict) -> np.ndarray | None:
    """Offline: rows whose value lies outside the column's expected band (None for the joint profile)."""
    if name not in columns:
        return None
    with np.errstate(invalid="ignore"):
        return (columns[name] < bands[name][0]) | (columns[name] > bands[name][1])


def _trimmed(start: int, end: int, unusual: np.ndarray) -> tuple[int, int]:
    """A window ended at its last row outside the expected band, when it has one.

    A long stretch that contains a spike is unusual for every row up to a stretch length after it;
    the values are back to normal at the spike's next row.
    """
    outside = np.flatnonzero(unusual[start:end + 1])
    return (start, start + int(outside[-1])) if len(outside) else (start, end)


def _points(name: str, marked: np.ndarray, z: np.ndarray, threshold: float, frame: pd.DataFrame, columns: dict,
            windows: list[Window]) -> list[FlaggedPoint]:
    """The marked rows (over the threshold, or offline outside the expected band) inside the column's windows."""
    if name not in columns:
        return []
    mine = [w for w in windows if w.column == name]
    rows = [r for r in np.flatnonzero(marked) if any(w.start <= r <= w.end for w in mine)]
    return [FlaggedPoint(int(r), name, float(columns[name][r]), round(float(to_score(z[r], threshold)), 4),
                         _time(frame.index, r)) for r in rows]


def _round(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(round(float(value), 6))


def _time(index: pd.Index, row: int) -> str | None:
    if isinstance(index, pd.DatetimeIndex):
        return str(index[row])
    return None
