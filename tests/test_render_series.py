"""Series plots: min-max decimation keeps spikes and gaps, panels share real time, windows are shaded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from matplotlib.dates import ConciseDateFormatter
from matplotlib.patches import Rectangle

from tests.helpers import data
from tools.render.series import MAX_PANELS, minmax_indices, render_series, series_figure


def _frame(n=1000, **options) -> pd.DataFrame:
    return data.series_frame(n, label=False, **options).set_index("timestamp")


def test_a_single_point_spike_survives_decimation_of_a_million_points():
    frame = _frame(1_000_000, spikes=((654_321, 9.0),), period=None, freq="1s")
    dip = frame["value"].iloc[200_000] - 7.0
    frame.iloc[200_000, 0] = dip
    line = series_figure(frame).axes[0].lines[0]
    plotted = line.get_ydata()
    assert len(plotted) <= 2 * 1200 + 2
    assert frame["value"].iloc[654_321] in plotted and dip in plotted
    assert plotted.max() == frame["value"].max() and plotted.min() == frame["value"].min()


def test_decimation_keeps_missing_values_as_gaps():
    values = np.arange(100_000, dtype=float)
    values[50_000:50_500] = np.nan
    kept = minmax_indices(values, 500)
    assert np.isnan(values[kept]).any() and kept[0] == 0 and kept[-1] == 99_999
    assert np.all(np.diff(kept) > 0)


def test_short_series_is_plotted_whole():
    assert minmax_indices(np.arange(10.0), 100).tolist() == list(range(10))


def test_columns_become_stacked_panels_sharing_a_real_time_axis():
    figure = series_figure(_frame(500, columns=("temperature", "pressure", "flow")))
    axes = figure.axes
    assert [ax.get_ylabel() for ax in axes] == ["temperature", "pressure", "flow"]
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[2])
    assert isinstance(axes[-1].xaxis.get_major_formatter(), ConciseDateFormatter)


def test_too_many_columns_are_capped_and_said():
    names = tuple(f"c{i}" for i in range(MAX_PANELS + 3))
    figure = series_figure(_frame(100, columns=names))
    assert len(figure.axes) == MAX_PANELS and "+3 more columns" in figure.get_suptitle()


def test_flagged_windows_are_shaded_in_every_panel_and_points_ringed():
    frame = _frame(400, columns=("a", "b"))
    figure = series_figure(frame, windows=[(100, 120), (300, 310, 0.9)], marks=[(110, "a")])
    for ax in figure.axes:
        spans = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(spans) == 2
    assert len(figure.axes[0].collections) == 1 and len(figure.axes[1].collections) == 0


def test_numeric_index_is_used_as_the_x_axis():
    frame = pd.DataFrame({"value": [1.0, 2.0, 3.0]}, index=pd.Index([0.5, 1.0, 1.5], name="seconds"))
    figure = series_figure(frame)
    assert figure.axes[0].lines[0].get_xdata().tolist() == [0.5, 1.0, 1.5]
    assert figure.axes[0].get_xlabel() == "seconds"


def test_render_gives_an_rgb_image_of_the_asked_width():
    image = render_series(_frame(300), width=900)
    assert image.mode == "RGB" and image.width == 900


def test_rendering_in_threads_matches_rendering_alone():
    frames = [_frame(2000, seed=i, spikes=((100 * (i + 1), 5.0),)) for i in range(4)]
    alone = [np.asarray(render_series(f, width=600)) for f in frames]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda f: np.asarray(render_series(f, width=600)), frames))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))


def test_the_expected_band_is_drawn_behind_the_line():
    from matplotlib.collections import PolyCollection

    from tools.experts.series import detect

    frame = _frame(3000, spikes=((1500, 3.0),))
    report = detect(frame)
    figure = series_figure(frame, windows=[(w.start, w.end) for w in report.windows], bands=report.bands)
    axes = figure.axes[0]
    assert any(isinstance(c, PolyCollection) and c.get_label() == "expected band" for c in axes.collections)
    assert any(isinstance(p, Rectangle) for p in axes.patches)  # the flagged window is shaded


def test_a_pause_in_the_recording_is_drawn_as_a_gap_not_a_line_across_it():
    frame = _frame(600)
    frame.index = frame.index.where(np.arange(600) < 300, frame.index + pd.Timedelta(days=30))  # a month's pause
    line = series_figure(frame).axes[0].lines[0]
    x, y = (np.asarray(a, dtype=np.float64) for a in line.get_data())
    pause = np.flatnonzero(np.isnan(y))
    assert len(pause) == 1 and x[pause[0] - 1] < x[pause[0] + 1] - 29  # the break sits between the two sides
    steady = series_figure(_frame(600)).axes[0].lines[0]
    assert not np.isnan(np.asarray(steady.get_data()[1], dtype=np.float64)).any()
