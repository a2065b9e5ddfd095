"""The series expert flags spikes, level shifts and broken cycles, and stays quiet on normal data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.helpers import data
from tools.experts.series import THRESHOLD, detect, find_period, rolling_median, to_score


def _frame(**options) -> pd.DataFrame:
    return data.series_frame(label=False, **options).set_index("timestamp")


def test_score_is_one_half_at_the_threshold():
    assert to_score(THRESHOLD) == pytest.approx(0.5) and to_score(0.0) == 0.0 and to_score(100.0) > 0.99


def test_period_of_a_daily_cycle_is_found():
    assert find_period(_frame(n=2000, period=96)["value"].to_numpy()) in (95, 96, 97)


def test_noise_has_no_period():
    assert find_period(np.random.default_rng(0).normal(size=2000)) is None


def test_rolling_median_is_not_biased_at_the_ends():
    cycle = np.sin(2 * np.pi * np.arange(960) / 96)
    trend = rolling_median(cycle, 96, period=96)
    assert np.abs(trend).max() < 0.05


def test_normal_series_is_not_anomalous():
    report = detect(_frame(n=2000, columns=("a", "b")))
    assert not report.anomalous and report.windows == [] and report.score < 0.5


def test_a_spike_is_flagged_at_its_row_with_its_time():
    frame = _frame(n=2000, spikes=((1234, 2.0),))
    report = detect(frame)
    assert report.anomalous and report.score > 0.9
    window = report.windows[0]
    assert window.start <= 1234 <= window.end and window.column == "value"
    assert window.start_time == str(frame.index[window.start])
    assert report.points[0].row == 1234


def test_a_level_shift_is_flagged_where_it_starts():
    report = detect(_frame(n=3000, level_shift=(1500, 800, 1.0)))
    assert report.anomalous
    assert any(1450 <= w.start <= 1560 for w in report.windows)


def test_a_flattened_cycle_is_flagged():
    frame = _frame(n=2000, period=96)
    frame.iloc[1000:1100, 0] = 10.0  # the cycle stops for about one period
    report = detect(frame)
    assert report.anomalous and any(w.start < 1100 and w.end > 1000 for w in report.windows)


def test_the_anomalous_column_is_named():
    frame = _frame(n=1500, columns=("temperature", "pressure"))
    frame.iloc[700, 1] += 3.0
    report = detect(frame)
    assert {w.column for w in report.windows} == {"pressure"}


def test_constant_and_short_series_do_not_break():
    assert not detect(pd.DataFrame({"v": np.full(500, 3.0)})).anomalous
    assert not detect(pd.DataFrame({"v": [1.0, 2.0, 50.0]})).anomalous


def test_missing_values_are_bridged_and_never_flagged():
    frame = _frame(n=1000)
    frame.iloc[400:450, 0] = np.nan
    report = detect(frame)
    assert not any(400 <= p.row < 450 for p in report.points)


def test_at_most_the_strongest_windows_are_reported_per_column():
    spikes = tuple((200 * i + 100, 1.0 + i / 2) for i in range(8))  # the last two are the strongest
    report = detect(_frame(n=2000, spikes=spikes), max_windows=2)
    assert len(report.windows) == 2
    assert {w.start for w in report.windows} == {1300, 1500}


def test_summary_names_verdict_and_windows():
    report = detect(_frame(n=2000, spikes=((500, 2.0),)))
    text = report.summary()
    assert text.startswith("series expert: anomalous") and "value:" in text
