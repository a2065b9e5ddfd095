"""Point cloud rendering: camera choice and storage, z-buffer, pre-processing, defect visibility."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from tests.helpers import data
from tools.render.camera import Camera, CameraStore, camera_for, class_key
from tools.render.cloud import (
    BACKGROUND,
    depth_buffer,
    preprocess,
    render_depth,
    render_shaded,
    render_views,
    voxel_downsample,
)


def _scene(defect=None):
    grid = data.surface_grid(160, 160, defect=defect)
    return grid[(grid != 0).any(axis=2)]


def _defect_pixel(camera: Camera) -> tuple[int, int]:
    """Where the bump's peak lands in the image (row, column)."""
    clean, bumped = data.surface_grid(160, 160), data.surface_grid(160, 160, defect="bump")
    row, col = np.unravel_index(np.argmax(np.abs(clean[:, :, 2] - bumped[:, :, 2])), clean.shape[:2])
    cols, rows, _ = camera.project(bumped[row, col][None, :])
    return int(rows[0]), int(cols[0])


def test_sensor_scan_is_seen_as_the_sensor_saw_it():
    camera = camera_for(_scene())
    assert camera.direction == (0.0, 0.0, 1.0) and camera.up == (0.0, -1.0, 0.0)
    assert 0.1 < camera.span < 0.13  # the 0.1 m field of view plus a margin


def test_free_standing_part_is_seen_along_its_thinnest_axis_from_above():
    rng = np.random.default_rng(0)
    plate = np.c_[rng.uniform(-5, 5, 2000), rng.uniform(-3, 3, 2000), rng.normal(0, 0.05, 2000)]
    camera = camera_for(plate)
    assert camera.direction[2] == pytest.approx(-1.0, abs=0.01)


def test_camera_survives_json():
    camera = camera_for(_scene())
    assert Camera.from_dict(json.loads(json.dumps(camera.to_dict()))) == camera


def test_projection_puts_the_centre_in_the_middle_and_scales_by_span():
    camera = Camera((0, 0, 1), (0, -1, 0), (1.0, 2.0, 3.0), span=2.0, size=(100, 50))
    cols, rows, depth = camera.project(np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 4.0], [1.0, 2.5, 3.0]]))
    assert cols.tolist() == [50, 100, 50] and rows.tolist() == [25, 25, 50] and depth.tolist() == [0, 1, 0]


def test_z_buffer_keeps_the_nearest_point_of_a_pixel():
    camera = Camera((0, 0, 1), (0, -1, 0), (0, 0, 0), span=1.0, size=(8, 8))
    depth = depth_buffer(np.array([[0.01, 0.01, 0.5], [0.01, 0.01, -0.2], [0.01, 0.01, 0.1]], np.float32), camera)
    assert depth[4, 4] == pytest.approx(-0.2)


def test_class_key_matches_names_tolerantly():
    assert class_key("Metal Nut") == class_key("metal-nut") == class_key(" METAL_NUT ") == "metal_nut"


def test_store_keeps_the_first_reference_camera(tmp_path):
    store = CameraStore(tmp_path)
    first = store.get_or_set("Metal Nut", _scene())
    moved = _scene() + np.float32([0.02, 0.0, 0.1])
    assert store.get_or_set("metal_nut", moved) == first
    assert (tmp_path / "metal_nut.json").exists()


def test_store_replaces_a_damaged_camera_file(tmp_path):
    (tmp_path / "gear.json").write_text("{not json")
    camera = CameraStore(tmp_path).get_or_set("gear", _scene())
    assert CameraStore(tmp_path).get("gear") == camera


def test_store_is_first_writer_wins_under_threads(tmp_path):
    clouds = [_scene() * np.float32(1 + i / 10) for i in range(6)]
    results = [None] * 6

    def worker(i):
        results[i] = CameraStore(tmp_path).get_or_set("bolt", clouds[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.to_dict().__repr__() for r in results}) == 1


def test_voxel_downsample_caps_the_count_and_keeps_the_extent():
    points = data.surface_points(50_000, background=True)
    thinned = voxel_downsample(points, 5_000)
    assert len(thinned) <= 5_000
    np.testing.assert_allclose(np.ptp(thinned, axis=0), np.ptp(points, axis=0), rtol=0.05)


def test_preprocess_removes_far_outliers():
    points = data.surface_points(5_000)
    outliers = np.float32([[1.0, 1.0, 5.0], [-2.0, 0.5, 3.0]])
    cleaned = preprocess(np.vstack([points, outliers]))
    assert np.abs(cleaned[:, 2] - 0.6).max() < 0.1 and len(cleaned) > 4_800


def test_preprocess_removes_the_background_plane_when_asked():
    scene = data.surface_points(20_000, background=True)
    part_only = preprocess(scene, remove_background=True)
    assert len(part_only) < 0.7 * len(scene)
    assert np.median(part_only[:, 2]) < np.median(scene[:, 2])  # what is left is the dome, nearer the sensor


def test_depth_render_has_a_legend_and_background():
    image = render_depth(_scene())
    pixels = np.asarray(image)
    assert image.height > image.width and tuple(pixels[0, 0]) == BACKGROUND


@pytest.mark.parametrize("render", [render_shaded, render_depth])
def test_a_bump_shows_where_it_is(render):
    camera = camera_for(_scene())
    clean = np.asarray(render(_scene(), camera), np.float32)
    bumped = np.asarray(render(_scene("bump"), camera), np.float32)
    difference = np.abs(clean - bumped).sum(axis=2)
    row, col = np.unravel_index(np.argmax(difference), difference.shape)
    expected = _defect_pixel(camera)
    assert abs(row - expected[0]) < 30 and abs(col - expected[1]) < 30
    assert difference.max() > 40


def test_same_cloud_same_camera_same_image():
    camera = camera_for(_scene())
    assert np.array_equal(np.asarray(render_shaded(_scene(), camera)), np.asarray(render_shaded(_scene(), camera)))


def test_sparse_cloud_is_rendered_without_pinholes():
    image = np.asarray(render_shaded(data.surface_points(3_000), None))
    inner = image[200:312, 200:312]
    assert (np.abs(inner.astype(int) - BACKGROUND).sum(axis=2) > 30).mean() > 0.99


def test_views_sheet_has_four_filled_tiles():
    sheet = np.asarray(render_views(_scene("dent"), tile=128))
    assert sheet.shape == (256, 256, 3)
    for row in (0, 128):
        for col in (0, 128):
            tile = sheet[row + 20: row + 128, col: col + 128]
            assert (np.abs(tile.astype(int) - BACKGROUND).sum(axis=2) > 30).mean() > 0.05
