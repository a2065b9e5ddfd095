"""NAB scoring pinned against hand-computed cases, and (where the data is present) against NAB's
published figures for five detectors on the nab_dev groups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assistant.evaluation import nab_score
from assistant.evaluation.nab_score import PROFILES, score_detections

STANDARD = PROFILES["standard"]
# hand-computed: sigma(y) = 2 / (1 + e^(5y)) - 1
SIGMA_AT_START = 0.986614298  # sigma(-1): the first row of a window
SIGMA_HALFWAY = 0.848283640  # sigma(-0.5)
SIGMA_5_OF_9_PAST = -0.8829262  # sigma(5/9): 5 rows past the end of a 10-row window (width - 1 = 9)
WINDOW = [(40, 49)]  # 100 rows: probationary period floor(0.15 * 100) = 15 rows


def _detect(*rows, n=100) -> np.ndarray:
    detected = np.zeros(n, bool)
    detected[list(rows)] = True
    return detected


def test_probation_is_fifteen_percent_capped_at_750_rows():
    assert (nab_score.probation_rows(100), nab_score.probation_rows(4032), nab_score.probation_rows(22000)) == (15, 604, 750)


def test_reward_curve_is_the_scaled_sigmoid():
    assert nab_score.scaled_sigmoid(-1.0) == pytest.approx(SIGMA_AT_START)
    assert nab_score.scaled_sigmoid(-0.5) == pytest.approx(SIGMA_HALFWAY)
    assert nab_score.scaled_sigmoid(0.0) == 0.0 and nab_score.scaled_sigmoid(3.0) == -1.0


def test_a_missed_window_costs_the_false_negative_weight():
    assert score_detections(_detect(), WINDOW, STANDARD).raw == -1.0
    assert score_detections(_detect(), WINDOW, PROFILES["reward_low_FN_rate"]).raw == -2.0


def test_the_first_row_of_a_window_earns_the_full_reward():
    assert score_detections(_detect(40), WINDOW, STANDARD).raw == pytest.approx(1.0)


def test_halfway_into_a_window_earns_less_and_only_the_earliest_detection_counts():
    expected = SIGMA_HALFWAY / SIGMA_AT_START  # 0.8598
    assert score_detections(_detect(45), WINDOW, STANDARD).raw == pytest.approx(expected)
    assert score_detections(_detect(45, 46, 49), WINDOW, STANDARD).raw == pytest.approx(expected)


def test_false_alarms_cost_the_full_weight_before_a_window_and_less_just_after_it():
    before = score_detections(_detect(20), WINDOW, STANDARD)
    just_after = score_detections(_detect(54), WINDOW, STANDARD)
    long_after = score_detections(_detect(90), WINDOW, STANDARD)
    assert before.raw == pytest.approx(-1 - 0.11) and before.false_alarms == 1
    assert just_after.raw == pytest.approx(-1 + 0.11 * SIGMA_5_OF_9_PAST, abs=1e-6)
    assert long_after.raw == pytest.approx(-1 - 0.11)
    assert score_detections(_detect(20), WINDOW, PROFILES["reward_low_FP_rate"]).raw == pytest.approx(-1 - 0.22)


def test_detections_in_the_probationary_period_are_not_scored():
    assert score_detections(_detect(3, 10), WINDOW, STANDARD).raw == -1.0


def test_a_window_inside_the_probationary_period_is_not_scored_but_counts_as_perfect():
    scored = score_detections(_detect(), [(2, 8), (40, 49)], STANDARD)
    assert (scored.raw, scored.scorable, scored.windows) == (-1.0, 1, 2)
    assert nab_score.null_score([scored], STANDARD) == -1.0 and nab_score.perfect_score([scored], STANDARD) == 2.0


def test_normalisation_puts_null_at_0_and_perfect_at_100():
    found, missed = score_detections(_detect(40), WINDOW, STANDARD), score_detections(_detect(), WINDOW, STANDARD)
    assert nab_score.normalised([found], STANDARD) == pytest.approx(100.0)
    assert nab_score.normalised([missed], STANDARD) == 0.0
    assert nab_score.normalised([found, missed], STANDARD) == pytest.approx(50.0)
    assert nab_score.normalised([score_detections(_detect(), [], STANDARD)], STANDARD) is None


def test_a_score_at_the_threshold_is_a_detection():
    assert nab_score.detections([0.2, 0.5, 0.7, np.nan], 0.5).tolist() == [False, True, True, False]


def test_windows_are_matched_to_rows_by_timestamp():
    times = pd.date_range("2024-01-01", periods=10, freq="5min")
    assert nab_score.window_rows(times, [["2024-01-01 00:10:00.000000", "2024-01-01 00:20:00"]]) == [(2, 4)]


def test_profiles_are_read_from_nab_config(tmp_path):
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"mine": {"CostMatrix": {"tpWeight": 1.0, "fpWeight": 0.5, "fnWeight": 3.0, "tnWeight": 1}}}))
    assert nab_score.load_profiles(path) == {"mine": nab_score.Profile("mine", 1.0, 0.5, 3.0)}
    assert nab_score.load_profiles(tmp_path / "absent.json") == PROFILES


# NAB's published detections (../shared/data/nab_dev/results, NAB @ ea702d75). This test reads data kept
# outside the repository; it skips where the data is absent, in CI too (CI machines may not carry it): the
# hand-computed cases above are what CI relies on.
NAB_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab_dev"
PUBLISHED_STANDARD = {"contextOSE": 75.89, "numenta": 75.52, "ARTime": 74.51, "randomCutForest": 56.13,
                      "windowedGaussian": 41.39}


@pytest.mark.shared_data
@pytest.mark.skipif(not (NAB_DEV / "results").is_dir(), reason="NAB's published detections are not present")
def test_published_nab_figures_are_reproduced_from_the_peers_files():
    from assistant.evaluation.datasets import load_dataset
    from assistant.evaluation.nab_corpus import load_series, peer_scores, score_detector

    series = load_series(load_dataset(NAB_DEV, "nab"))
    table = json.loads((NAB_DEV / "config" / "thresholds.json").read_text())
    profiles = nab_score.load_profiles(NAB_DEV / "config" / "profiles.json")
    for detector, published in PUBLISHED_STANDARD.items():
        thresholds = {p: table[detector][p]["threshold"] for p in profiles}
        corpus, _, _ = score_detector(series, peer_scores(NAB_DEV / "results", detector, series), thresholds, profiles)
        assert corpus["standard"] == pytest.approx(published, abs=0.01), detector
