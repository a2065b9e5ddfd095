"""The series expert flags spikes, level shifts, changes of variance and broken cycles, in every column
and as many windows as there are, in both modes; the causal mode never looks ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.helpers import data
from tools.experts.series import JOINT_NAME, detect
from tools.experts.series_profile import find_period, rolling_median
from tools.experts.series_scores import DEFAULT, confirmed, left_profile, to_score

MODES = ("offline", "causal")


def _frame(**options) -> pd.DataFrame:
    return data.series_frame(label=False, **options).set_index("timestamp")


def _hit(report, first: int, last: int) -> bool:
    return any(w.start <= last and first <= w.end for w in report.windows)


def test_score_is_one_half_at_the_threshold():
    assert to_score(6.0, 6.0) == pytest.approx(0.5) and to_score(0.0, 6.0) == 0.0 and to_score(100.0, 6.0) > 0.99


def test_period_of_a_daily_cycle_is_found():
    assert find_period(_frame(n=2000, period=96)["value"].to_numpy()) in (95, 96, 97)


def test_noise_has_no_period():
    assert find_period(np.random.default_rng(0).normal(size=2000)) is None


def test_rolling_median_is_not_biased_at_the_ends():
    cycle = np.sin(2 * np.pi * np.arange(960) / 96)
    assert np.abs(rolling_median(cycle, 96, period=96)).max() < 0.05


def test_left_profile_is_the_distance_to_the_nearest_earlier_stretch():
    x = np.random.default_rng(1).normal(size=120)
    m = 6
    stretches = np.lib.stride_tricks.sliding_window_view(x, m)
    expected = [min(np.linalg.norm(stretches[i] - stretches[j]) for j in range(i - m + 1)) for i in range(m, len(stretches))]
    assert np.allclose(left_profile(x, m)[2 * m - 1:], expected)


@pytest.mark.parametrize("mode", MODES)
def test_normal_series_is_not_anomalous(mode):
    report = detect(_frame(n=3000, columns=("a", "b")), mode=mode)
    assert not report.anomalous and report.windows == [] and report.score < 0.5


@pytest.mark.parametrize("mode", MODES)
def test_a_spike_is_flagged_at_its_row_with_its_time(mode):
    frame = _frame(n=3000, spikes=((1734, 2.0),))
    report = detect(frame, mode=mode)
    assert report.anomalous and report.score > 0.6
    window = next(w for w in report.windows if w.start <= 1734 <= w.end)
    assert window.column == "value" and window.start_time == str(frame.index[window.start])
    assert window.peak_row == 1734 and window.peak_value > window.expected_high


@pytest.mark.parametrize("mode", MODES)
def test_one_anomaly_gives_one_window_from_its_onset(mode):
    report = detect(_frame(n=3000, spikes=((1734, 2.0),)), mode=mode)
    around = [w for w in report.windows if w.start <= 1900 and w.end >= 1600]
    assert len(around) == 1 and 1734 - 5 <= around[0].start <= 1734


def test_an_offline_window_ends_where_the_values_are_back_in_the_expected_band():
    report = detect(_frame(n=3000, spikes=((1734, 2.0),)))
    window = next(w for w in report.windows if w.start <= 1734 <= w.end)
    assert window.end < 1734 + 5 and [p.row for p in report.points] == [1734]


def test_offline_judges_the_first_rows_from_the_rows_after_them():
    frame = _frame(n=3000, spikes=((3, 2.0), (120, 2.0)))
    offline, causal = detect(frame), detect(frame, mode="causal")
    assert [(w.start, w.peak_row) for w in offline.windows] == [(3, 3), (118, 120)] and causal.windows == []


def test_a_stretch_over_the_threshold_counts_offline_only_where_the_two_sided_view_confirms_it():
    z = np.zeros(100)
    z[[20, 21, 60]] = 5.0
    support = np.zeros(100)
    support[63] = 9.0  # near the second run only
    kept = confirmed(z, support, threshold=2.5, confirm=8.0, pad=5)
    assert kept[[20, 21]].tolist() == [2.5, 2.5] and kept[60] == 5.0 and kept[0] == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_a_level_shift_is_flagged_where_it_starts(mode):
    report = detect(_frame(n=3000, level_shift=(1500, 800, 1.0)), mode=mode)
    assert report.anomalous and any(1450 <= w.start <= 1560 for w in report.windows)


@pytest.mark.parametrize("mode", MODES)
def test_a_change_of_variance_is_flagged(mode):
    frame = _frame(n=3000, noise=0.05)
    frame.iloc[1800:2100, 0] += np.random.default_rng(3).normal(0, 0.5, 300)
    report = detect(frame, mode=mode)
    assert _hit(report, 1800, 2100)


@pytest.mark.parametrize("mode", MODES)
def test_every_anomaly_gets_its_own_window(mode):
    report = detect(_frame(n=4000, spikes=((1500, 2.0), (2500, -2.0), (3500, 2.5))), mode=mode)
    assert all(_hit(report, row, row) for row in (1500, 2500, 3500))


@pytest.mark.parametrize("mode", MODES)
def test_a_flattened_cycle_is_flagged(mode):
    frame = _frame(n=3000, period=96)
    frame.iloc[2000:2100, 0] = 10.0  # the cycle stops for about one period
    assert _hit(detect(frame, mode=mode), 2000, 2100)


@pytest.mark.parametrize("mode", MODES)
def test_the_anomalous_column_is_named(mode):
    frame = _frame(n=3000, columns=("temperature", "pressure"))
    frame.iloc[1700, 1] += 3.0
    report = detect(frame, mode=mode)
    named = {w.column for w in report.windows if w.start <= 1700 <= w.end}
    assert "pressure" in named and "temperature" not in named


def test_several_columns_are_also_judged_together():
    report = detect(_frame(n=2000, columns=("a", "b", "c")), mode="offline")
    assert set(report.row_scores) == {"a", "b", "c", "*joint*"} and JOINT_NAME not in {w.column for w in report.windows}


def test_causal_scores_do_not_change_when_rows_are_appended():
    frame = _frame(n=3000, spikes=((1200, 2.0), (2600, 2.0)), level_shift=(2000, 300, 1.0))
    whole = detect(frame, mode="causal", learn_rows=450)
    part = detect(frame.iloc[:1800], mode="causal", learn_rows=450)
    assert np.array_equal(whole.row_scores["value"][:1800], part.row_scores["value"])
    assert np.array_equal(whole.alarm_rows[:1800], part.alarm_rows)


def test_causal_alarms_come_at_or_after_the_anomaly_and_never_in_the_learning_rows():
    frame = _frame(n=3000, spikes=((1734, 2.0), (300, 2.0)))
    report = detect(frame, mode="causal", learn_rows=450)
    alarms = np.flatnonzero(report.alarm_rows)
    assert alarms.min() >= 450 and any(1734 <= a <= 1734 + DEFAULT.smooth_rows for a in alarms)


def test_decision_scores_pass_one_half_exactly_where_alarms_start():
    report = detect(_frame(n=3000, spikes=((1734, 2.0),)), mode="causal")
    scores = report.decision_scores()
    assert np.array_equal(scores >= 0.5, report.alarm_rows) and ((scores >= 0) & (scores <= 1)).all()


def test_summary_speaks_in_times_values_and_the_expected_band():
    report = detect(_frame(n=3000, spikes=((1734, 2.0),)))
    assert "2024-01-19" in report.summary() and "was expected" in report.summary()


@pytest.mark.parametrize("mode", MODES)
def test_constant_and_short_series_do_not_break(mode):
    assert not detect(pd.DataFrame({"v": np.full(500, 3.0)}), mode=mode).anomalous
    assert not detect(pd.DataFrame({"v": [1.0, 2.0, 50.0]}), mode=mode).anomalous


def test_missing_values_are_bridged_and_never_flagged():
    frame = _frame(n=2000)
    frame.iloc[1400:1450, 0] = np.nan
    report = detect(frame)
    assert not any(1400 <= p.row < 1450 for p in report.points)


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        detect(_frame(n=100), mode="future")


def test_a_long_series_is_profiled_on_block_means_and_still_finds_its_spike():
    frame = _frame(n=60_000, spikes=((41_234, 4.0),), period=None, freq="1s")
    report = detect(frame)
    assert _hit(report, 41_234, 41_234) and len(report.row_scores["value"]) == 60_000
