"""Point cloud rendering: camera choice and storage, splat z-buffer, preparation, what the renders show."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from tests.helpers import data, scans
from tools.inputs.prepared import prepare, voxel_downsample
from tools.render.camera import Camera, CameraStore, camera_for, camera_for_references, class_key
from tools.render.cloud import BACKGROUND, Paint, as_prepared, render_depth, render_shaded, render_views
from tools.render.splat import splat_radii, visible_points


def _scene(defect=None):
    grid = data.surface_grid(160, 160, defect=defect)
    return grid[(grid != 0).any(axis=2)]


def _defect_pixel(camera: Camera) -> tuple[int, int]:
    """Where the bump's peak lands in the image (row, column)."""
    clean, bumped = data.surface_grid(160, 160), data.surface_grid(160, 160, defect="bump")
    row, col = np.unravel_index(np.argmax(np.abs(clean[:, :, 2] - bumped[:, :, 2])), clean.shape[:2])
    cols, rows, _ = camera.project(bumped[row, col][None, :])
    return int(rows[0]), int(cols[0])


def _filled(image) -> np.ndarray:
    return np.abs(np.asarray(image, int)[:, :, :3] - BACKGROUND).sum(axis=2) > 30


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
    index, depth = visible_points(np.array([[0.01, 0.01, 0.5], [0.01, 0.01, -0.2], [0.01, 0.01, 0.1]], np.float32), camera)
    assert index[4, 4] == 1 and depth[4, 4] == pytest.approx(-0.2) and (index >= 0).sum() == 1


def test_splats_cover_their_radius_and_the_far_side_stays_hidden():
    sphere = scans.free_scan(scans.object_mesh("sphere")[0], None, seed=1, points=20_000).points
    cloud = as_prepared(sphere)
    camera = camera_for(sphere)
    radii = splat_radii(cloud.spacing, camera)
    index = visible_points(cloud.points, camera, radii, tolerance=4 * float(np.median(cloud.spacing)))[0]
    seen = index[index >= 0]
    facing = cloud.normals[seen] @ np.asarray(camera.direction, np.float32)  # normals point outwards
    assert (facing > 0.3).mean() < 0.005  # what is seen is the near half of the sphere, not the far side
    assert radii.min() >= 1 and (index >= 0).mean() > 0.5


def test_class_key_matches_names_tolerantly():
    assert class_key("Metal Nut") == class_key("metal-nut") == class_key(" METAL_NUT ") == "metal_nut"


def test_the_first_reference_scans_fix_the_camera_and_later_ones_do_not(tmp_path):
    store = CameraStore(tmp_path)
    assert store.get("Metal Nut") is None
    first = store.fix("Metal Nut", [_scene()])
    moved = _scene() + np.float32([0.02, 0.0, 0.1])
    assert store.fix("metal_nut", [moved]) == first == store.get("metal nut")
    assert json.loads((tmp_path / "metal_nut.json").read_text())["fixed_by"] == "references"


def test_a_camera_an_older_version_fixed_from_any_render_is_replaced_by_the_references(tmp_path):
    (tmp_path / "gear.json").write_text(json.dumps(camera_for(_scene() * 3).to_dict()))
    assert CameraStore(tmp_path).fix("gear", [_scene()]) == camera_for(_scene())


def test_store_replaces_a_damaged_camera_file(tmp_path):
    (tmp_path / "gear.json").write_text("{not json")
    assert CameraStore(tmp_path).get("gear") is None
    camera = CameraStore(tmp_path).fix("gear", [_scene()])
    assert CameraStore(tmp_path).get("gear") == camera


def test_store_is_first_writer_wins_under_threads(tmp_path):
    clouds = [_scene() * np.float32(1 + i / 10) for i in range(6)]
    results = [None] * 6

    def worker(i):
        results[i] = CameraStore(tmp_path).fix("bolt", [clouds[i]])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.to_dict().__repr__() for r in results}) == 1


def test_references_scanned_in_one_place_fix_the_whole_view_scanned_anywhere_only_view_and_scale():
    placed = [_scene(), _scene() + np.float32([0.002, 0, 0])]
    assert not camera_for_references(placed).follow
    anywhere = [_scene(), _scene() + np.float32([0.1, 0.05, 0])]
    camera = camera_for_references(anywhere)
    assert camera.follow and camera.span == pytest.approx(camera_for(_scene()).span)
    moved = _scene() + np.float32([0.3, 0, 0])
    cols, rows, _ = camera.for_cloud(moved).project(moved.mean(axis=0)[None, :])
    assert abs(cols[0] - camera.size[0] / 2) < 20 and abs(rows[0] - camera.size[1] / 2) < 20


def test_voxel_downsample_caps_the_count_and_keeps_the_extent():
    points = data.surface_points(50_000, background=True)
    thinned = points[voxel_downsample(points, 5_000)]
    assert len(thinned) <= 5_000
    np.testing.assert_allclose(np.ptp(thinned, axis=0), np.ptp(points, axis=0), rtol=0.05)


def test_prepare_removes_far_outliers_and_remembers_the_input_rows():
    points = data.surface_points(5_000)
    outliers = np.float32([[1.0, 1.0, 5.0], [-2.0, 0.5, 3.0]])
    cloud = prepare(np.vstack([points, outliers]))
    assert np.abs(cloud.points[:, 2] - 0.6).max() < 0.1 and len(cloud.points) > 4_800
    assert np.array_equal(np.vstack([points, outliers])[cloud.index], cloud.points)


def test_a_table_around_the_part_is_removed_when_it_dominates():
    scene = data.surface_points(20_000, background=True)
    part_only = prepare(scene)
    assert part_only.background is not None and len(part_only.points) < 0.7 * len(scene)
    assert np.median(part_only.points[:, 2]) < np.median(scene[:, 2])  # what is left is the dome, nearer the sensor
    assert prepare(scene, background="keep").background is None


@pytest.mark.parametrize("shape", ["plate", "column"])
def test_a_parts_own_face_is_not_taken_for_a_table(shape):
    rng = np.random.default_rng(0)
    if shape == "plate":
        points = np.c_[rng.uniform(-5, 5, 8000), rng.uniform(-3, 3, 8000), rng.normal(0, 0.02, 8000)]
    else:  # two faces of a square column: the big face's plane has the other face standing on its edge
        face = np.c_[rng.uniform(0, 0.4, 6000), np.zeros(6000), rng.uniform(0, 2.5, 6000)]
        side = np.c_[np.zeros(4000), rng.uniform(0, 0.4, 4000), rng.uniform(0, 2.5, 4000)]
        points = np.vstack([face, side])
    assert prepare(points).background is None


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


@pytest.mark.parametrize("count", [3_000, 60_000])
def test_sparse_and_dense_clouds_render_as_a_closed_surface(count):
    image = np.asarray(render_shaded(data.surface_points(count), None))
    assert _filled(image)[200:312, 200:312].mean() > 0.99


def test_splat_size_follows_the_density_so_the_silhouette_keeps_its_size():
    camera = camera_for(data.surface_points(60_000))
    sparse, dense = (_filled(render_shaded(data.surface_points(n), camera)).mean() for n in (3_000, 60_000))
    assert sparse == pytest.approx(dense, rel=0.08)


def test_a_scans_own_colours_are_kept_and_lit():
    points = data.surface_points(20_000)
    colours = np.where((points[:, 0] < np.median(points[:, 0]))[:, None], [200, 30, 30], [30, 30, 200]).astype(np.uint8)
    image = np.asarray(render_shaded(prepare(points, colours=colours)), int)
    left, right = image[240:270, 150:200], image[240:270, 320:370]
    assert left[:, :, 0].mean() > 2 * left[:, :, 2].mean() and right[:, :, 2].mean() > 2 * right[:, :, 0].mean()


def test_paint_colours_the_points_it_weighs_and_ghost_points_show_missing_surface():
    points = data.surface_points(20_000)
    weight = (points[:, 0] > np.quantile(points[:, 0], 0.8)).astype(np.float32)
    ghost = points[:500] + np.float32([0, 0, -0.02])  # nearer the sensor than the surface: drawn over it
    paint = Paint(np.tile(np.uint8([255, 0, 0]), (len(points), 1)), weight, ghost,
                  np.tile(np.uint8([0, 255, 0]), (500, 1)), (((255, 0, 0), "red"),))
    camera = camera_for(points)
    pixels = np.asarray(render_shaded(points, camera, paint=paint, legend=False), int)
    reddish = (pixels[:, :, 0] > pixels[:, :, 1] + 60) & (pixels[:, :, 0] > pixels[:, :, 2] + 60)
    greenish = pixels[:, :, 1] > pixels[:, :, 0] + 60
    assert 0.05 < reddish[_filled(pixels)].mean() < 0.4 and greenish.any()
    assert render_shaded(points, camera, paint=paint).height > camera.size[1]  # the legend strip


def test_views_sheet_has_four_filled_tiles():
    sheet = np.asarray(render_views(_scene("dent"), tile=128))
    assert sheet.shape == (256, 256, 3)
    for row in (0, 128):
        for col in (0, 128):
            assert _filled(sheet[row + 20: row + 128, col: col + 128]).mean() > 0.05


def test_a_scan_from_all_sides_gets_six_views_and_a_scan_of_one_side_four():
    ball = scans.free_scan(scans.object_mesh("sphere")[0], None, seed=2, points=20_000).points
    assert np.asarray(render_views(ball, tile=96)).shape == (192, 288, 3)
    from_above = scans.station_scan(scans.object_mesh("bracket")[0], None, seed=2, grid=False, points=20_000).points
    assert np.asarray(render_views(prepare(from_above), tile=96)).shape == (192, 192, 3)


def test_the_new_user_dent_shows_in_an_unordered_sphere_of_50000_points():
    """The trial that started issue 16: a dent 1 % of the size deep, invisible in the old renders."""
    mesh, dent = scans.object_mesh("sphere", "dent", seed=4)
    clean = prepare(scans.free_scan(scans.object_mesh("sphere")[0], None, seed=9, points=50_000).points)
    dented_scan = scans.free_scan(mesh, dent, seed=9, points=50_000)
    dented = prepare(dented_scan.points)
    centre = scans.pose_point(dented_scan, dent.centre)
    camera = _looking_at(dented.points, centre)
    difference = np.abs(np.asarray(render_shaded(dented, camera), float) - np.asarray(render_shaded(clean, camera), float))
    cols, rows, _ = camera.project(centre[None, :])
    near = difference[int(rows[0]) - 25:int(rows[0]) + 25, int(cols[0]) - 25:int(cols[0]) + 25].sum(axis=2).mean()
    assert near > 4 * difference.sum(axis=2)[_filled(render_shaded(clean, camera))].mean()


def _looking_at(points: np.ndarray, target: np.ndarray) -> Camera:
    from dataclasses import replace

    middle = points.mean(axis=0)
    towards = (target - middle) / np.linalg.norm(target - middle)
    helper = np.array([0.0, 0.0, 1.0]) if abs(towards[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    up = helper - helper @ towards * towards
    base = camera_for(points)
    return replace(base, direction=tuple(-towards), up=tuple(up / np.linalg.norm(up)), centre=tuple(middle))



@pytest.mark.parametrize("fixed_by", ["the first reference (kb add-ref, one file at a time)", "all four references"])
def test_a_free_part_in_a_new_pose_is_framed_whole_by_its_class_camera(tmp_path, fixed_by):
    """The evidence picture of a good free-pose scan once showed a corner of the part: the class camera was fixed
    where (and as wide as) the references lay, and the query lay elsewhere, in another pose."""
    from tools.experts.cloud.inspect import scan_view
    from tools.inputs.artifacts import load
    from tools.render.views import fix_class_camera

    base, _ = scans.object_mesh("bracket")
    references = [load(data.write_cloud(scans.free_scan(base, None, seed=i, points=20_000).points, tmp_path / f"g{i}.ply"))
                  for i in range(4)]
    query = load(data.write_cloud(scans.free_scan(base, None, seed=11, points=20_000).points, tmp_path / "q.ply"))
    fix_class_camera("bracket", tmp_path, references[:1] if fixed_by.startswith("the first") else references)
    view = scan_view(query, None, "bracket", tmp_path)
    cols, rows, depth = view.camera.project(view.cloud.points)
    (width, height), (near, far) = view.camera.size, view.camera.depth_range
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height) & (depth >= near) & (depth <= far)  # depth colours too
    assert inside.mean() > 0.99
    still = scan_view(references[0], None, "bracket", tmp_path)  # the scans still share the class's view direction
    assert still.camera.direction == view.camera.direction
