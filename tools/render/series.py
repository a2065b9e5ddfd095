"""Time series -> a plot image: stacked panels on one time axis, flagged windows shaded.

Matplotlib's object API with the Agg canvas (no pyplot, no global state: safe in threads).
Long series are thinned by min-max decimation: each pixel column keeps its lowest and highest
value, so a single-point spike always survives, and a missing value keeps its gap in the line; so does a
pause in the recording (timestamps far apart).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

MAX_PANELS = 8
COLOURS = ("#1f5fa8", "#2a8a4a", "#8a4fb0", "#b06a1f", "#1f8a8a", "#a83250", "#5a6a1f", "#4a4a4a")
FLAG_COLOUR = "#d62728"
BAND_COLOUR = "#9ec5e8"
GAP_STEPS = 20  # rows further apart than this many typical steps: a pause in the recording, drawn as a gap


def minmax_indices(values: np.ndarray, buckets: int) -> np.ndarray:
    """Sorted row positions to keep: per bucket the min, the max and (if any) one missing value."""
    n = len(values)
    if n <= 2 * buckets:
        return np.arange(n)
    size = int(np.ceil(n / buckets))
    padded = np.full(size * int(np.ceil(n / size)), np.nan)
    padded[:n] = values
    table = padded.reshape(-1, size)
    missing = np.isnan(table)
    starts = np.arange(len(table)) * size
    low = np.argmin(np.where(missing, np.inf, table), axis=1)
    high = np.argmax(np.where(missing, -np.inf, table), axis=1)
    gaps = np.flatnonzero(missing.any(axis=1) & ~missing.all(axis=1))
    keep = np.concatenate([starts + low, starts + high, starts[gaps] + np.argmax(missing[gaps], axis=1), [0, n - 1]])
    return np.unique(keep[keep < n])


def series_figure(frame: pd.DataFrame, *, columns: Sequence[str] | None = None, windows: Iterable = (),
                  marks: Iterable[tuple[int, str]] = (), title: str | None = None, width: int = 1200,
                  bands: dict | None = None) -> Figure:
    """A figure with one panel per column sharing the time axis.

    windows: (start_row, end_row, ...) row positions to shade; marks: (row, column) points to ring;
    bands: {column: (low, high)} per-row arrays of the expected band, drawn behind the line.
    """
    columns = list(columns or frame.columns)[:MAX_PANELS]
    height_in = max(3.0, 0.9 + 1.7 * len(columns))
    figure = Figure(figsize=(width / 100, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(columns), 1, sharex=True, squeeze=False)[:, 0]
    x, is_time = _x_values(frame.index)
    windows, marks = list(windows), list(marks)
    gap = GAP_STEPS * float(np.median(np.diff(x))) if len(x) > 2 else np.inf
    for i, (ax, column) in enumerate(zip(axes, columns, strict=True)):
        values = frame[column].to_numpy(dtype=np.float64)
        keep = minmax_indices(values, width)
        if bands and column in bands:
            low, high = (np.asarray(b, dtype=np.float64) for b in bands[column])
            ax.fill_between(*broken_at_gaps(x, keep, low, high, gap=gap), color=BAND_COLOUR, alpha=0.35,
                            linewidth=0, label="expected band")
        ax.plot(*broken_at_gaps(x, keep, values, gap=gap), color=COLOURS[i % len(COLOURS)], linewidth=0.9)
        _shade(ax, x, windows)
        _ring(ax, x, values, [row for row, name in marks if name == column])
        ax.set_ylabel(column, fontsize=10)
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.tick_params(labelsize=9)
    _time_axis(axes[-1], frame.index, is_time)
    hidden = len(frame.columns) - len(columns)
    figure.suptitle((title or "") + (f"  (+{hidden} more columns not shown)" if hidden > 0 else ""), fontsize=11)
    return figure


def broken_at_gaps(x: np.ndarray, keep: np.ndarray, *columns: np.ndarray, gap: float) -> tuple[np.ndarray, ...]:
    """The kept rows of x and the columns, with a missing value put where consecutive rows of x lie further
    apart than `gap` (a pause in the recording), so the plot leaves the pause empty instead of drawing a
    straight line across it."""
    pauses = np.flatnonzero(np.diff(x) > gap) + 1  # the first row after each pause
    after = np.unique(np.searchsorted(keep, pauses))
    after = after[(after > 0) & (after < len(keep))]
    kept = (x[keep], *(np.asarray(c, dtype=np.float64)[keep] for c in columns))
    return tuple(np.insert(a, after, np.nan) for a in kept) if len(after) else kept


def render_series(frame: pd.DataFrame, **options) -> Image.Image:
    """The series plot as an RGB image (options as for series_figure)."""
    return figure_to_image(series_figure(frame, **options))


def figure_to_image(figure: Figure) -> Image.Image:
    """Rasterise a figure with its Agg canvas."""
    canvas = FigureCanvasAgg(figure) if not isinstance(figure.canvas, FigureCanvasAgg) else figure.canvas
    canvas.draw()
    return Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")


def _x_values(index: pd.Index) -> tuple[np.ndarray, bool]:
    if isinstance(index, pd.DatetimeIndex):
        return mdates.date2num(index.to_numpy()), True
    if pd.api.types.is_numeric_dtype(index):
        return index.to_numpy(dtype=np.float64), False
    return np.arange(len(index), dtype=np.float64), False


def _shade(ax, x: np.ndarray, windows: list) -> None:
    """Shade each window; a window of one row still gets a visible width (0.6 % of the axis)."""
    last = len(x) - 1
    least = 0.006 * (x[-1] - x[0]) if last > 0 else 1.0
    for window in windows:
        start, end = int(np.clip(window[0], 0, last)), int(np.clip(window[1], 0, last))
        left, right = x[start], x[max(end, start)]
        pad = max(0.0, (least - (right - left)) / 2)
        ax.axvspan(left - pad, right + pad, color=FLAG_COLOUR, alpha=0.18, linewidth=0)


def _ring(ax, x: np.ndarray, values: np.ndarray, rows: list[int]) -> None:
    rows = [r for r in rows if 0 <= r < len(x)]
    if rows:
        ax.scatter(x[rows], values[rows], s=36, facecolors="none", edgecolors=FLAG_COLOUR, linewidths=1.4, zorder=3)


def _time_axis(ax, index: pd.Index, is_time: bool) -> None:
    if is_time:
        locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel(str(index.name) if index.name is not None else "row", fontsize=10)
