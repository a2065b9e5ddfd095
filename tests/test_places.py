"""Places and their words: regions in each modality's terms, the rules that name a place, the expert's distances."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tools.agent.fence import as_data, for_people
from tools.agent.places import describe, distance_in_box, distance_of, hottest_place, rules_for_place


def _rule(rule_id, text):
    return SimpleNamespace(id=rule_id, text=text, kind="normality")


def test_an_image_region_is_a_box_in_fractions_of_the_image():
    region = {"box": [0.6123, 0.58, 0.71, 0.67], "area": 0.0071, "peak": 0.9871, "where": "centre"}
    assert describe(region) == "centre: x 0.61–0.71, y 0.58–0.67 of the image (0.7% of it), peak 0.99"


def test_a_series_window_says_when_and_its_peak_against_the_expected_band():
    window = {"kind": "series_window", "where": "temperature: 2024-01-01 10:00 to 2024-01-01 10:30",
              "start_row": 10, "end_row": 40, "peak_row": 22, "peak_value": 8.31234, "expected_low": 4.1,
              "expected_high": 5.9, "score": 0.9912}
    assert describe(window) == ("temperature: 2024-01-01 10:00 to 2024-01-01 10:30: peak 8.312 (row 22) where "
                                "4.1 to 5.9 was expected, score 0.99")


def test_a_3d_region_is_told_by_its_centre_extent_and_depth_whatever_else_it_carries():
    region = {"kind": "dent", "where": "upper left", "centre": [12.5, -3.25, 40.0], "extent": [4.0, 3.0, 0.5],
              "depth": -0.42, "peak": 0.93, "box": [0.1, 0.1, 0.2, 0.2], "points": 120}
    text = describe(region)
    assert text.startswith("dent at upper left: centre (12.5, -3.25, 40)") and "extent 4 × 3 × 0.5" in text
    assert "0.42 deep" in text and "scan's units" in text
    spot = describe({**region, "extent": [0.0, 0.0, 0.0]})
    assert "a single spot" in spot and "extent 0" not in spot


def test_rules_are_picked_by_the_part_of_the_object_they_name():
    rules = [_rule("a", "The centre bore is round."), _rule("b", "The label sits in the upper left corner."),
             _rule("c", "No scratches anywhere."), _rule("d", "The bottom edge is straight.")]
    named, whole = rules_for_place(rules, {"where": "centre, towards the lower right"})
    assert [r.id for r in named] == ["a", "d"] and [r.id for r in whole] == ["c"]
    named, whole = rules_for_place(rules, {"kind": "series_window", "where": "value: rows 3 to 9"})
    assert named == [] and [r.id for r in whole] == ["c"]


@pytest.mark.parametrize("score", [0.01, 0.3, 0.5, 0.87, 0.999])
def test_a_distance_maps_back_to_its_score(score):
    from tools.experts.vision.calibration import to_score

    assert float(to_score(distance_of(score, 0.7), 0.7)) == pytest.approx(score, abs=1e-6)


def test_the_distance_in_a_box_is_taken_at_its_hottest_point_and_the_hottest_place_is_boxed():
    heat = np.zeros((100, 200), np.float32)
    heat[70, 150] = 0.5
    assert distance_in_box(heat, (0.7, 0.6, 0.8, 0.8), 0.7) == pytest.approx(0.7, rel=1e-6)
    assert distance_in_box(heat, (0.0, 0.0, 0.5, 0.5), 0.7) < 0.05  # a score of 0: the smallest distance searched
    place = hottest_place(heat)
    x0, y0, x1, y1 = place["box"]
    assert x0 < 0.7525 < x1 and y0 < 0.705 < y1 and place["peak"] == 0.5 and place["where"] == "lower right"


def test_people_read_a_tool_result_without_the_models_data_tags():
    text = f"Stored {as_data('x<y>.png', 'file_name')} as reference.\nRules:\n<rules>\n[r1] no dents\n</rules>"
    assert for_people(text) == "Stored x‹y›.png as reference.\nRules:\n[r1] no dents"


def test_references_that_do_not_differ_at_a_place_give_no_ratio_only_what_they_measured():
    from tools.agent.places import Place, deviation_text

    scan = {"kind": "missing surface", "basis": "3-D", "centre": [1.0, 2.0, 3.0], "extent": [0.0, 0.0, 0.0]}
    agreeing = Place(1, scan, True, deviation=0.545, normal_spread=[0.0, 1e-12], threshold=0.255,
                     spread_of="the reference scans, each measured against the others")
    text = deviation_text(agreeing)
    assert agreeing.ratio is None and "times as much" not in text and "do not differ from one another there" in text
    differing = Place(1, scan, True, deviation=0.545, normal_spread=[0.05, 0.1], threshold=0.255)
    assert differing.ratio == pytest.approx(5.45) and "5.5 times as much" in deviation_text(differing)
    image = Place(1, {"box": [0.1, 0.1, 0.2, 0.2]}, True, deviation=5.0, normal_spread=[0.0, 0.0, 0.0], threshold=2.0)
    assert "times as much" not in deviation_text(image) and "3 reference normals do not differ" in deviation_text(image)
