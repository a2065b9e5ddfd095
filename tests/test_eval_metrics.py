"""Evaluation metrics against hand-computed values; polarity; answers without a verdict; costs."""

from __future__ import annotations

import pytest

from assistant.evaluation.costs import estimate_cost, price_of
from assistant.evaluation.metrics import box_hits_mask, group_metrics, strategy_metrics


def row(label, anomalous, score, status="ok", cls="capsule", defect=None):
    return {"label": label, "anomalous": anomalous, "score": score, "status": status, "class": cls,
            "defect": defect or ("spot" if label else "good"), "score_source": "confidence" if score is not None else "none"}


# labels 1,1,0,0 with scores .9,.4,.6,.1: of the 4 (anomalous, normal) pairs 3 are ranked right -> AUROC .75;
# by falling score: .9 (anomalous, precision 1), .6, .4 (anomalous, precision 2/3), .1 -> AP (1 + 2/3) / 2.
HAND = [row(1, True, 0.9), row(1, False, 0.4), row(0, True, 0.6), row(0, False, 0.1)]


def test_acc_auroc_aupr_match_hand_computed_values():
    result = group_metrics(HAND)
    assert result["acc"] == pytest.approx(0.5)
    assert result["auroc"] == pytest.approx(0.75)
    assert result["aupr"] == pytest.approx((1 + 2 / 3) / 2)
    assert result["confusion"] == {"tp": 1, "fn": 1, "fp": 1, "tn": 1, "no_verdict_anomalous": 0, "no_verdict_normal": 0}


def test_swapping_labels_turns_auroc_into_one_minus_auroc():
    swapped = [{**r, "label": 1 - r["label"]} for r in HAND]
    assert group_metrics(swapped)["auroc"] == pytest.approx(1 - group_metrics(HAND)["auroc"])


def test_undecided_and_unparsed_count_as_wrong_for_acc_and_are_ranked_at_one_half():
    rows = HAND + [row(1, None, None, "undecided"), row(0, None, None, "unparsed"), row(0, None, None, "error")]
    result = group_metrics(rows)
    assert result["acc"] == pytest.approx(2 / 7)
    # anomalies .9 .4 .5 against normals .6 .1 .5 .5: 4 + 1 + (1 + 0.5 + 0.5) of 12 pairs ranked right
    assert result["auroc"] == pytest.approx(7 / 12)
    assert result["answered_only"]["auroc"] == pytest.approx(0.75)
    # 'excluded': left out of the answered-only figures
    assert (result["undecided"], result["unparsed"], result["error"], result["excluded"]) == (1, 1, 1, 3)
    assert (result["confusion"]["no_verdict_anomalous"], result["confusion"]["no_verdict_normal"]) == (1, 2)


def test_auroc_of_a_class_with_one_label_is_null_with_the_reason():
    result = group_metrics([row(1, True, 0.8), row(1, False, 0.3)])
    assert result["auroc"] is None and result["aupr"] is None
    assert "only anomalous" in result["auroc_note"]
    assert result["acc"] == pytest.approx(0.5)


def test_mean_is_over_classes_with_a_defined_value_and_pooled_ranks_everything_together():
    other = [row(1, True, 0.7, cls="pill"), row(1, True, 0.95, cls="pill")]
    result = strategy_metrics(HAND + other)
    assert result["per_class"]["pill"]["auroc"] is None
    assert result["mean"]["auroc"] == pytest.approx(0.75) and result["mean"]["auroc_classes"] == 1
    assert result["mean"]["acc"] == pytest.approx((0.5 + 1.0) / 2)
    # pooled: anomalous .9 .4 .7 .95 vs normal .6 .1 -> wrong pairs: (.4 < .6) only, 7 of 8 right
    assert result["pooled"]["auroc"] == pytest.approx(7 / 8)
    assert result["pooled"]["n"] == 6


def test_detection_rate_is_reported_per_defect_kind():
    result = group_metrics(HAND + [row(1, True, 0.8, defect="scratch")])
    assert result["by_defect"]["spot"] == {"n": 2, "called_anomalous": 1, "rate": 0.5}
    assert result["by_defect"]["scratch"]["rate"] == 1.0
    assert result["by_defect"]["good"]["called_anomalous"] == 1


def test_box_hit_needs_the_box_to_cover_a_defect_pixel(tmp_path):
    import numpy as np
    from PIL import Image

    mask = np.zeros((100, 100), np.uint8)
    mask[10:20, 70:80] = 255
    path = tmp_path / "m.png"
    Image.fromarray(mask).save(path)
    assert box_hits_mask([0.65, 0.05, 0.9, 0.3], path) is True
    assert box_hits_mask([0.0, 0.5, 0.4, 1.0], path) is False
    assert box_hits_mask(None, path) is None


def test_cost_is_estimated_from_the_price_table_and_unknown_models_have_no_cost():
    assert price_of("gpt-4o-2024-08-06") == price_of("gpt-4o")
    assert estimate_cost("openai", "gpt-4o", {"input_tokens": 1_000_000, "output_tokens": 0}) == pytest.approx(2.5)
    assert estimate_cost("openai", "my-local-llava", {"input_tokens": 10}) is None
    assert estimate_cost("offline", "experts", {}) == 0.0
