"""The vision expert on generated parts: detection, localisation, calibration, errors, report."""

import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers.defects import add_defect, jitter, textured_part
from tools.errors import InputError
from tools.experts.vision.calibration import to_score
from tools.experts.vision.expert import ExpertReport, VisionExpert, compare
from tools.experts.vision.regions import describe_place


@pytest.fixture(scope="module")
def part():
    return textured_part(256, seed=0)


@pytest.fixture(scope="module")
def expert(part):
    return VisionExpert().fit([jitter(part, seed) for seed in range(4)])


@pytest.fixture(scope="module")
def spotted(part):
    return add_defect(jitter(part, 40), "spot", seed=3)


def test_synthetic_spot_is_flagged(expert, spotted):
    report = expert.score(spotted[0])
    assert report.anomalous and report.score >= 0.5


def test_heatmap_peak_lies_inside_the_defect(expert, spotted):
    image, mask = spotted
    heatmap = expert.score(image).heatmap
    assert mask[np.unravel_index(heatmap.argmax(), heatmap.shape)]


def test_first_region_box_overlaps_the_defect(expert, spotted):
    image, mask = spotted
    x0, y0, x1, y1 = expert.score(image).regions[0].box
    h, w = mask.shape
    assert mask[int(y0 * h):int(np.ceil(y1 * h)), int(x0 * w):int(np.ceil(x1 * w))].any()


@pytest.mark.parametrize("kind", ["scratch", "colour"])
def test_other_defect_kinds_score_above_every_clean_copy(expert, part, kind):
    defective, _ = add_defect(jitter(part, 50), kind, seed=11)
    clean = max(expert.score(jitter(part, 60 + i)).raw_score for i in range(3))
    assert expert.score(defective).raw_score > clean


def test_jittered_normal_is_not_flagged(expert, part):
    report = expert.score(jitter(part, 77))
    assert not report.anomalous and report.regions == []


def test_single_reference_does_not_flag_a_jittered_normal(part):
    single = VisionExpert().fit([jitter(part, 1)])
    assert not single.score(jitter(part, 78)).anomalous


def test_heatmap_has_query_resolution_and_unit_range(expert, part):
    query = jitter(part, 5).resize((400, 300))
    heatmap = expert.score(query).heatmap
    assert heatmap.shape == (300, 400) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0


def test_score_is_one_half_exactly_at_the_threshold():
    assert to_score(2.5, 2.5) == 0.5
    assert to_score(2.4, 2.5) < 0.5 < to_score(2.6, 2.5)


def test_anomalous_agrees_with_score(expert, spotted, part):
    for image in (spotted[0], jitter(part, 9)):
        report = expert.score(image)
        assert report.anomalous == (report.score >= 0.5)
        assert report.anomalous == (report.raw_score >= report.threshold)


def test_nearest_reference_is_the_one_the_query_copies(part):
    other = textured_part(256, seed=5).rotate(180)
    expert = VisionExpert().fit([other, jitter(part, 2)])
    assert expert.score(jitter(part, 3)).nearest_reference == 1


def test_to_dict_is_json_without_heatmap(expert, spotted):
    data = expert.score(spotted[0]).to_dict()
    assert "heatmap" not in data
    assert json.loads(json.dumps(data))["anomalous"] is True


def test_summary_states_score_threshold_and_region_place(expert, spotted):
    report = expert.score(spotted[0])
    text = report.summary()
    assert f"{report.score:.2f}" in text and "threshold" in text and report.regions[0].where in text


def test_describe_place_in_words():
    assert describe_place((0.0, 0.0, 0.1, 0.1)) == "upper left, near the edge"
    assert describe_place((0.45, 0.45, 0.55, 0.55)) == "centre"
    assert describe_place((0.7, 0.4, 0.8, 0.5)) == "middle right"


def test_compare_returns_a_report(part):
    report = compare(jitter(part, 8), [jitter(part, 1)])
    assert isinstance(report, ExpertReport) and report.method.startswith("patch nearest-neighbour")


def test_no_references_is_an_input_error(part):
    with pytest.raises(InputError, match="at least one reference"):
        compare(part, [])


@pytest.mark.parametrize("where", ["query", "reference"])
def test_zero_size_image_is_an_input_error_with_one_line(part, where):
    empty = Image.new("RGB", (0, 0))
    query, references = (empty, [part]) if where == "query" else (part, [empty])
    with pytest.raises(InputError) as caught:
        compare(query, references)
    assert "empty" in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_matching_is_an_input_error():
    with pytest.raises(InputError, match="matching"):
        VisionExpert(matching="sideways")


def test_unknown_backbone_is_an_input_error():
    with pytest.raises(InputError, match="backbone"):
        VisionExpert("imaginary_net")
