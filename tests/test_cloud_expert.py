"""The 3-D expert on simulated scans: registration, deviation, calibration, regions, grid maps, self-check, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import scans
from tools.experts.cloud.expert import CloudExpert, self_check
from tools.experts.cloud.model import fit, measure
from tools.experts.cloud.registration import register
from tools.experts.cloud.views import ScanView
from tools.inputs.prepared import prepare
from tools.render.camera import camera_for

POINTS = 30_000


def _flat(scan: scans.Scan) -> np.ndarray:
    points = scan.points.reshape(-1, 3)
    return points[(points != 0).any(axis=1)]


def _view(points: np.ndarray, **grid) -> ScanView:
    cloud = prepare(points)
    return ScanView(cloud, camera_for(cloud.points), **grid)


@pytest.fixture(scope="module")
def bracket():
    """Four reference scans of a bracket in random 3-D poses, and labelled query scans (unordered, complete)."""
    base, _ = scans.object_mesh("bracket")
    references = [scans.free_scan(base, None, seed=i, points=POINTS) for i in range(4)]
    queries = {"good": [scans.free_scan(base, None, seed=50 + i, points=POINTS) for i in range(2)]}
    for j, kind in enumerate(scans.DEFECTS):
        mesh, defect = scans.object_mesh("bracket", kind, seed=60 + j)
        queries[kind] = [scans.free_scan(mesh, defect, seed=70 + j, points=POINTS)]
    return references, queries


@pytest.fixture(scope="module")
def expert(bracket):
    references, _ = bracket
    return CloudExpert().fit([prepare(r.points) for r in references])


def test_registration_recovers_a_random_pose(bracket):
    references, queries = bracket
    reference, query = prepare(references[0].points), prepare(queries["good"][0].points)
    model = fit([reference])
    alignment = register(query.points, model.target)
    truth = references[0].pose @ np.linalg.inv(queries["good"][0].pose)  # query frame -> reference frame
    turn = alignment.transform[:3, :3] @ truth[:3, :3].T
    angle = np.degrees(np.arccos(np.clip((np.trace(turn) - 1) / 2, -1, 1)))
    assert angle < 2.0 and np.linalg.norm(alignment.transform[:3, 3] - truth[:3, 3]) < 1.0


def test_distance_along_the_reference_normals_shows_a_dent_that_point_distances_hide(bracket, expert):
    _, queries = bracket
    scan = queries["dent"][0]
    cloud = prepare(scan.points)
    found = measure(cloud.points, expert.model.surface, expert.model.target)
    inside = scan.defect_mask[cloud.index]
    nearest_point, _ = expert.model.surface.tree.query(found.aligned, k=1)
    assert np.quantile(nearest_point[~inside], 0.99) > 0.5 * scan.defect.depth  # the sampling gap alone is this large
    deviation = np.abs(found.points.signed)
    assert deviation[inside].max() > 0.6 * scan.defect.depth
    assert deviation[inside].max() > 4 * np.quantile(deviation[~inside], 0.99)


def test_good_scans_stay_below_the_threshold_calibrated_on_the_references(bracket, expert):
    _, queries = bracket
    for scan in queries["good"]:
        report = expert.score(_view(scan.points))
        assert not report.anomalous and report.score < 0.5 and report.regions == []
    assert expert.model.normal_scores["method"] == "leave-one-out"


@pytest.mark.parametrize("kind, words", [("dent", {"dent"}), ("bulge", {"bulge"}), ("hole", {"missing surface", "dent"}),
                                         ("missing", {"missing surface", "dent"}), ("extra", {"bulge", "extra material"})])
def test_each_defect_is_found_where_it_is(bracket, expert, kind, words):
    _, queries = bracket
    scan = queries[kind][0]
    report = expert.score(_view(scan.points))
    assert report.anomalous and report.score > 0.5
    centre = scans.pose_point(scan, scan.defect.centre)
    near = [r for r in report.regions if np.linalg.norm(np.asarray(r.centre) - centre) < 2 * scan.defect.radius + 5]
    assert near and near[0].kind in words


def test_the_verdict_agrees_with_its_regions_on_every_scan(bracket, expert):
    _, queries = bracket
    base, _ = scans.object_mesh("bracket")
    once_without_region = scans.free_scan(base, None, seed=54, points=POINTS)  # a single point's score called it anomalous
    for scan in [once_without_region, *(s for found in queries.values() for s in found)]:
        report = expert.score(_view(scan.points))
        assert report.anomalous == bool(report.regions) == (report.score >= 0.5)
        assert all(r.peak >= 0.5 for r in report.regions) and report.score == pytest.approx(
            max([r.peak for r in report.regions], default=report.score))


def test_a_dent_is_measured_about_as_deep_as_it_is(bracket, expert):
    _, queries = bracket
    scan = queries["dent"][0]
    dent = next(r for r in expert.score(_view(scan.points)).regions if r.kind == "dent")
    assert -1.6 * scan.defect.depth < dent.depth < -0.5 * scan.defect.depth
    assert 0.5 * scan.defect.radius < max(dent.extent) < 4 * scan.defect.radius  # the part beyond the threshold


def test_heatmap_and_boxes_are_in_the_rendered_views_pixels(bracket, expert):
    _, queries = bracket
    view = _view(queries["bulge"][0].points)
    report = expert.score(view)
    assert report.heatmap.shape == (view.camera.size[1], view.camera.size[0])
    top = report.regions[0]
    row, col = np.unravel_index(np.argmax(report.heatmap), report.heatmap.shape)
    x0, y0, x1, y1 = top.box
    assert top.area > 0 and x0 - 0.02 <= col / report.heatmap.shape[1] <= x1 + 0.02
    assert y0 - 0.02 <= row / report.heatmap.shape[0] <= y1 + 0.02


def test_report_has_the_expert_report_shape_and_3d_details(bracket, expert):
    _, queries = bracket
    report = expert.score(_view(queries["dent"][0].points))
    data = json.loads(json.dumps(report.to_dict()))
    assert {"score", "raw_score", "threshold", "anomalous", "regions", "nearest_reference", "method"} <= set(data)
    assert {"box", "area", "peak", "where", "kind", "depth", "centre", "extent", "points"} <= set(data["regions"][0])
    assert "3-D expert: anomaly score" in report.summary() and "aligned the query" in report.explain("bracket")
    assert 0 <= report.nearest_reference < 4 and data["alignment"]["fitness"] > 0.9


def test_a_region_carries_its_figures_against_the_references_own_variation(bracket, expert):
    _, queries = bracket
    report = expert.score(_view(queries["dent"][0].points))
    dent = report.regions[0].to_dict()
    assert dent["basis"] == "references" and dent["deviation"] > dent["threshold"] > 0
    assert 0 < dent["normal_variation"] < dent["deviation"]  # the references differ far less there than the dent
    assert dent["deviation"] == pytest.approx(abs(dent["depth"]), rel=0.5)


def test_a_good_scan_still_names_the_place_that_differs_most_in_3d(bracket, expert):
    _, queries = bracket
    report = expert.score(_view(queries["good"][0].points))
    place = report.hottest.to_dict()
    assert not report.regions and place["peak"] < 0.5 and place["deviation"] < place["threshold"]
    assert len(place["centre"]) == 3 and place["box"]


def test_the_fitted_model_is_cached_on_disk(bracket, tmp_path):
    references, _ = bracket
    clouds = [prepare(r.points) for r in references[:2]]
    first = CloudExpert(cache_dir=tmp_path).fit(clouds, keys=["a", "b"])
    from tools.experts.cloud import expert as expert_module

    expert_module._MODELS.clear()
    again = CloudExpert(cache_dir=tmp_path).fit(clouds, keys=["a", "b"])
    assert first.loaded_from is None and again.loaded_from == "disk"
    assert np.array_equal(first.model.thresholds, again.model.thresholds)
    assert np.allclose(first.model.variation, again.model.variation)  # the follow-ups' normal variation survives


def test_one_reference_is_calibrated_from_its_two_halves(bracket):
    references, queries = bracket
    expert = CloudExpert().fit([prepare(references[0].points)])
    assert expert.model.normal_scores["method"] == "two halves of one scan"
    assert expert.score(_view(queries["bulge"][0].points)).anomalous


def test_an_organised_scan_is_mapped_into_its_sensor_grid():
    base, _ = scans.object_mesh("sphere")
    references = [prepare(_flat(scans.station_scan(base, None, seed=i, shape=(160, 160)))) for i in range(4)]
    mesh, defect = scans.object_mesh("sphere", "dent", seed=3, depth=3.0, facing=np.array([0, 0, 1.0]))
    scan = scans.station_scan(mesh, defect, seed=9, shape=(160, 160))
    valid = (scan.points != 0).any(axis=2)
    report = CloudExpert().fit(references).score(_view(scan.points[valid], all_points=scan.points[valid], valid=valid))
    grid, mask = report.grid_map, scan.defect_mask
    assert grid.shape == valid.shape and np.isnan(grid[~valid]).all()
    assert np.nanmean(grid[mask]) > 0.5 > 0.1 > np.nanmean(grid[valid & ~mask])
    x0, y0, x1, y1 = report.regions[0].grid_box
    rows, cols = np.nonzero(mask)
    assert x0 * 160 <= np.median(cols) <= x1 * 160 and y0 * 160 <= np.median(rows) <= y1 * 160


def test_without_references_the_self_check_flags_a_dent_and_passes_a_clean_scan():
    mesh, defect = scans.object_mesh("sphere", "dent", seed=4, depth=2.0)
    dented = self_check(_view(scans.free_scan(mesh, defect, seed=9, points=POINTS).points))
    clean = self_check(_view(scans.free_scan(scans.object_mesh("sphere")[0], None, seed=9, points=POINTS).points))
    assert dented.evidence == clean.evidence == "self-check"
    assert dented.anomalous and dented.regions[0].kind == "dent" and not clean.anomalous
    assert "weaker evidence" in dented.explain("ball") and "kb add-ref" in " ".join(dented.notes)
