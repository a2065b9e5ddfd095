"""The anomaly likelihood, the new-extreme rule and the quiet period, on generated raw scores and series:
calibrated per series, one alarm per event, and nothing after a row changes its score."""

from __future__ import annotations

import numpy as np
import pytest

from tools.experts.series_likelihood import alarms, likelihood_z, new_extreme


def _raw(n: int = 2000, seed: int = 0, bursts: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.gamma(2.0, 0.5, n)
    if bursts:
        raw[rng.choice(np.arange(200, n), 60, replace=False)] += 8.0  # a machine that often looks surprising
    return raw


def test_a_jump_in_the_raw_score_has_a_high_likelihood_z():
    raw = _raw()
    raw[1500] = 20.0
    z = likelihood_z(raw, learn_rows=300, smooth_rows=1)
    assert z[1500] > 10 and np.percentile(z[300:1500], 99) < 4


def test_the_same_raw_score_is_less_surprising_where_such_scores_are_common():
    quiet, bursty = _raw(), _raw(bursts=True)
    quiet[1800] = bursty[1800] = 9.0
    z_quiet = likelihood_z(quiet, learn_rows=300, smooth_rows=1)[1800]
    z_bursty = likelihood_z(bursty, learn_rows=300, smooth_rows=1)[1800]
    assert z_quiet > 2 * z_bursty


def test_smoothing_averages_the_last_rows():
    raw = np.zeros(600)
    raw[500] = 30.0
    raw[:400] = np.random.default_rng(2).normal(1.0, 0.1, 400)
    one, three = likelihood_z(raw, 100, 1), likelihood_z(raw, 100, 3)
    assert three[502] > 0 and one[502] < 0 and one[500] > three[500]


def test_no_likelihood_before_half_the_learning_rows():
    assert not likelihood_z(_raw(), learn_rows=400, smooth_rows=3)[:199].any()


def test_a_noise_free_raw_score_does_not_divide_by_zero():
    z = likelihood_z(np.r_[np.zeros(500), [1e-3]], learn_rows=100, smooth_rows=1)
    assert np.isfinite(z).all() and z[-1] > 10 and not z[:500].any()


@pytest.mark.parametrize("function", [lambda raw: likelihood_z(raw, 300, 3), new_extreme])
def test_appending_rows_never_changes_earlier_values(function):
    raw = _raw(bursts=True)
    assert np.array_equal(function(raw)[:1200], function(raw[:1200]))


def test_a_value_beyond_every_earlier_one_is_measured_in_units_of_their_range():
    values = np.r_[np.linspace(0.0, 10.0, 100), [10.5, 5.0, -2.0]]
    extreme = new_extreme(values)
    assert extreme[100] == pytest.approx(0.05) and extreme[101] == 0.0 and extreme[102] == pytest.approx(2.0 / 10.5)


def test_a_change_after_a_constant_start_is_an_extreme():
    extreme = new_extreme(np.r_[np.full(50, 3.0), [3.01]])
    assert not extreme[:50].any() and extreme[50] > 1.0


def test_alarms_wait_for_the_learning_rows_and_stay_quiet_after_one():
    z = np.zeros(100)
    z[[5, 40, 45, 60]] = 9.0
    assert np.flatnonzero(alarms(z, threshold=3.0, learn_rows=10, quiet_rows=15)).tolist() == [40, 60]


def test_a_far_stronger_surprise_in_the_quiet_period_raises_its_own_alarm():
    z = np.zeros(100)
    z[[40, 45, 50]] = [4.0, 30.0, 50.0]  # a faint alarm, then an event ten times as strong, then a bit stronger still
    assert np.flatnonzero(alarms(z, threshold=3.0, learn_rows=10, quiet_rows=15, escalation=5.0)).tolist() == [40, 45]
    assert np.flatnonzero(alarms(z, threshold=3.0, learn_rows=10, quiet_rows=15)).tolist() == [40]
