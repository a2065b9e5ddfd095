"""AUROC/AUPR rank every item over one kind of score: no refusal flatters, no mix of score scales."""

from __future__ import annotations

import pytest

from assistant.evaluation.metrics import group_metrics, strategy_metrics


def row(label, anomalous, score, source="confidence", status="ok", cls="capsule"):
    return {"label": label, "anomalous": anomalous, "score": score, "status": status, "class": cls,
            "defect": "spot" if label else "good", "score_source": source if score is not None else "none"}


def refused(label, status="undecided", cls="capsule"):
    return row(label, None, None, status=status, cls=cls)


def test_an_item_without_a_verdict_is_ranked_at_the_uninformative_score_not_left_out():
    # the model answers the easy anomaly (.9) and refuses the hard one; normals .6 (a false alarm) and .1
    rows = [row(1, True, 0.9), refused(1), row(0, True, 0.6), row(0, False, 0.1)]
    result = group_metrics(rows)
    # all items: the refused anomaly sits at 0.5, below the false alarm (.6): 3 of 4 pairs right
    assert result["auroc"] == pytest.approx(0.75)
    assert result["neutral"] == 1
    # beside it, clearly labelled: the answered items only, where the refusal flatters
    answered = result["answered_only"]
    assert (answered["n"], answered["auroc"]) == (3, pytest.approx(1.0))
    assert answered["acc"] == pytest.approx(2 / 3) and result["acc"] == pytest.approx(2 / 4)


@pytest.mark.parametrize("status", ["undecided", "unparsed", "error"])
def test_every_kind_of_missing_verdict_is_ranked(status):
    rows = [row(1, True, 0.9), refused(1, status), row(0, True, 0.6), row(0, False, 0.1)]
    result = group_metrics(rows)
    assert result["auroc"] == pytest.approx(0.75) and result["answered_only"]["auroc"] == pytest.approx(1.0)


def test_a_class_is_ranked_over_its_primary_score_source_only_and_reports_the_mix():
    # three logprob scores and one stated confidence: the confidence (.95) is not ranked among the logprobs;
    # its item keeps only its verdict's side of the threshold (anomalous: just above 0.5)
    rows = [row(1, True, 0.7, "logprobs"), row(1, True, 0.95, "confidence"),
            row(0, True, 0.8, "logprobs"), row(0, False, 0.2, "logprobs")]
    result = group_metrics(rows)
    assert result["ranked_source"] == "logprobs"
    assert result["score_sources"] == {"logprobs": 3, "confidence": 1, "expert": 0, "verdict": 0, "none": 0}
    assert result["mapped"] == 1
    assert result["auroc"] == pytest.approx(0.5)  # mixing the scales would have given 0.75


def test_a_bare_verdict_is_its_own_score_source_also_in_old_results():
    rows = [row(1, True, 1.0, "verdict"), row(0, False, 0.0, "none"), refused(0)]
    assert group_metrics(rows)["score_sources"] == {"logprobs": 0, "confidence": 0, "expert": 0, "verdict": 2,
                                                    "none": 1}


def test_mean_and_pooled_use_one_score_source_for_the_whole_strategy():
    rows = [row(1, True, 0.9, "expert", cls="pill"), row(0, False, 0.3, "expert", cls="pill"),
            row(1, True, 0.6, "expert", cls="pill"), row(1, True, 0.8, "confidence"), row(0, False, 0.4, "expert")]
    result = strategy_metrics(rows)
    assert {v["ranked_source"] for v in [*result["per_class"].values(), result["pooled"]]} == {"expert"}
    assert result["per_class"]["capsule"]["mapped"] == 1
    assert result["mean"]["answered_only"]["auroc"] == pytest.approx(1.0)


def test_the_answered_only_figures_are_undefined_when_nothing_was_answered():
    result = group_metrics([refused(1), refused(0, "error")])
    assert result["auroc"] == pytest.approx(0.5) and result["ranked_source"] is None
    assert result["answered_only"]["auroc"] is None and result["answered_only"]["acc"] is None
