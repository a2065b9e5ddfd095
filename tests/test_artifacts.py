"""tools.inputs.artifacts.load: every supported format gives the right typed Artifact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from tests.helpers import data
from tools.inputs.artifacts import load


# ---------------------------------------------------------------- images
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_image_formats_load_as_rgb_with_their_size(tmp_path, suffix):
    path = data.write_image(data.part_image((120, 80)), tmp_path / f"part{suffix}")
    artifact = load(path)
    assert (artifact.kind, artifact.payload.mode, artifact.payload.size) == ("image", "RGB", (120, 80))
    assert artifact.meta["width"] == 120 and artifact.id == artifact.sha256[:12]


def test_an_image_read_again_is_not_decoded_again_but_is_a_picture_of_its_own(tmp_path, monkeypatch):
    from tools.inputs import artifacts

    path = data.write_image(data.part_image((120, 80)), tmp_path / "part.png")
    first = load(path, name="first.png")
    monkeypatch.setitem(artifacts.FORMATS, "png", artifacts.Format("PNG image", (".png",), _not_decoded))
    again = load(path, name="again.png")
    assert (again.name, again.sha256, again.meta) == ("again.png", first.sha256, first.meta)
    assert again.payload.tobytes() == first.payload.tobytes() and again.payload is not first.payload
    again.payload.thumbnail((10, 10))  # a caller changing its picture changes nobody else's
    assert load(path).payload.size == (120, 80)


def test_a_changed_image_file_is_read_again(tmp_path):
    path = data.write_image(Image.new("RGB", (40, 30), (200, 0, 0)), tmp_path / "part.png")
    assert load(path).payload.getpixel((1, 1)) == (200, 0, 0)
    data.write_image(Image.new("RGB", (40, 30), (0, 0, 200)), path)
    assert load(path).payload.getpixel((1, 1)) == (0, 0, 200)


def _not_decoded(path, limits):
    raise AssertionError("decoded again")


def test_image_with_alpha_is_flattened_on_white(tmp_path):
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    artifact = load(data.write_image(rgba, tmp_path / "clear.png"))
    assert artifact.payload.getpixel((5, 5)) == (255, 255, 255)


def test_grayscale_image_becomes_three_equal_channels(tmp_path):
    artifact = load(data.write_image(Image.new("L", (8, 8), 77), tmp_path / "grey.png"))
    assert artifact.payload.getpixel((1, 1)) == (77, 77, 77)


def test_16_bit_tiff_with_12_bit_data_is_scaled_by_its_bit_depth(tmp_path):
    values = np.full((8, 8), 4095, np.uint16)
    values[0, 0] = 0
    tifffile.imwrite(tmp_path / "deep.tif", values)
    pixels = np.asarray(load(tmp_path / "deep.tif").payload)
    assert pixels[4, 4, 0] == 255 and pixels[0, 0, 0] == 0


def test_16_bit_png_keeps_relative_brightness(tmp_path):
    Image.fromarray(np.array([[0, 30000], [60000, 65535]], np.uint16)).save(tmp_path / "deep.png")
    pixels = np.asarray(load(tmp_path / "deep.png").payload)[:, :, 0]
    assert pixels[0, 0] < pixels[0, 1] < pixels[1, 0] <= pixels[1, 1] == 255


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "phone.jpg", exif=exif)
    artifact = load(tmp_path / "phone.jpg")
    assert artifact.payload.size == (20, 40) and artifact.meta["exif_orientation"] == 6


# ---------------------------------------------------------------- point clouds
@pytest.mark.parametrize("name,encoding", [("c.ply", "ascii"), ("c.ply", "binary"), ("c.ply", "binary_big_endian"),
                                           ("c.pcd", "ascii"), ("c.pcd", "binary"), ("c.pcd", "binary_compressed"),
                                           ("c.xyz", None), ("c.pts", None), ("c.txt", None), ("c.npy", None)])
def test_cloud_formats_give_the_same_points(tmp_path, name, encoding):
    points = data.surface_points(500, defect="bump")
    artifact = load(data.write_cloud(points, tmp_path / name, encoding=encoding or "binary"))
    assert artifact.kind == "point_cloud" and artifact.payload.dtype == np.float32
    assert artifact.payload.shape == (500, 3)
    np.testing.assert_allclose(artifact.payload, points, atol=2e-6)


@pytest.mark.parametrize("name", ["scan.tiff", "scan.npy"])
def test_organised_grid_keeps_grid_and_drops_empty_cells(tmp_path, name):
    grid = data.surface_grid(40, 30, background=False)
    artifact = load(data.write_cloud(grid, tmp_path / name))
    valid = (grid != 0).any(axis=2)
    assert artifact.meta["organised"] == [40, 30] and artifact.meta["empty_cells"] == int((~valid).sum())
    assert artifact.extra["grid"].shape == (40, 30, 3) and len(artifact.payload) == int(valid.sum())


def test_nan_and_infinite_points_are_dropped_and_counted(tmp_path):
    points = data.surface_points(100)
    points[:3] = [np.nan, np.inf, -np.inf]
    artifact = load(data.write_cloud(points, tmp_path / "holes.npy"))
    assert len(artifact.payload) == 97 and artifact.meta["dropped_points"] == 3


def test_text_cloud_with_header_and_commas(tmp_path):
    (tmp_path / "pts.txt").write_text("x,y,z,intensity\n0,0,0,1\n1,0,0,1\n0,1,0.5,1\n")
    artifact = load(tmp_path / "pts.txt")
    assert artifact.kind == "point_cloud" and artifact.payload[2].tolist() == [0, 1, 0.5]


# ---------------------------------------------------------------- series
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".json"])
def test_series_formats_give_time_index_numeric_columns_and_labels_apart(tmp_path, suffix):
    frame = data.series_frame(200, columns=("temperature", "pressure"), spikes=((50, 5.0),))
    artifact = load(data.write_series(frame, tmp_path / f"line{suffix}"))
    assert artifact.kind == "series" and list(artifact.payload.columns) == ["temperature", "pressure"]
    assert isinstance(artifact.payload.index, pd.DatetimeIndex)
    assert artifact.payload.index[1] - artifact.payload.index[0] == pd.Timedelta("15min")
    assert artifact.meta["label_column"] == "label" and int(artifact.extra["labels"].sum()) == 1
    assert artifact.payload["temperature"].iloc[50] == pytest.approx(frame["temperature"].iloc[50])


def test_text_in_a_numeric_column_becomes_missing_and_is_counted(tmp_path):
    (tmp_path / "s.csv").write_text("time,value,comment\n0,1.5,ok\n1,oops,bad\n2,2.5,ok\n3,,ok\n")
    artifact = load(tmp_path / "s.csv")
    values = artifact.payload["value"]
    assert values.isna().tolist() == [False, True, False, True]
    assert artifact.meta["text_in_numeric_columns"] == 1 and artifact.meta["ignored_columns"] == ["comment"]
    assert artifact.payload.index.tolist() == [0.0, 1.0, 2.0, 3.0]  # a numeric time axis


def test_unsorted_timestamps_are_sorted(tmp_path):
    (tmp_path / "s.csv").write_text("timestamp,value\n2024-01-03,3\n2024-01-01,1\n2024-01-02,2\n")
    artifact = load(tmp_path / "s.csv")
    assert artifact.payload["value"].tolist() == [1, 2, 3] and artifact.meta["sorted_by_time"]


def test_epoch_seconds_become_datetimes(tmp_path):
    (tmp_path / "s.csv").write_text("timestamp,value\n1700000000,1\n1700000060,2\n")
    index = load(tmp_path / "s.csv").payload.index
    assert str(index[1]) == "2023-11-14 22:14:20"


def test_series_without_time_column_uses_row_numbers(tmp_path):
    (tmp_path / "s.json").write_text("[1, 2, 3, 2, 1]")
    artifact = load(tmp_path / "s.json")
    assert artifact.payload["value"].tolist() == [1, 2, 3, 2, 1] and artifact.meta["timestamp_column"] is None


def test_constant_series_is_fine(tmp_path):
    (tmp_path / "flat.csv").write_text("value\n" + "5\n" * 50)
    assert load(tmp_path / "flat.csv").payload["value"].nunique() == 1


# ---------------------------------------------------------------- video
@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mov", ".gif"])
def test_video_formats_give_timed_frames(tmp_path, suffix):
    path = data.write_video(tmp_path / f"clip{suffix}", n=20, fps=10)
    artifact = load(path)
    times = [t for t, _ in artifact.payload]
    assert artifact.kind == "video" and artifact.meta["frames"] == 20
    assert times == sorted(times) and times[0] == 0 and times[-1] == pytest.approx(1.9, abs=0.02)
    assert artifact.payload[0][1].mode == "RGB" and artifact.meta["fps"] == pytest.approx(10)


def test_long_video_is_thinned_but_keeps_the_odd_frame(tmp_path):
    from tools.inputs.base import Limits

    path = data.write_video(tmp_path / "long.mp4", n=120, odd_frame=77, fps=24)
    artifact = load(path, limits=Limits(keep_frames=10))
    numbers = artifact.extra["frame_numbers"]
    assert 77 in numbers and len(numbers) <= 10 + 16
    odd = artifact.payload[numbers.index(77)][1]
    assert np.asarray(odd)[32, 48].tolist()[0] > 150  # the red blob


# ---------------------------------------------------------------- identity and names
def test_name_is_for_display_and_id_follows_content(tmp_path):
    path = data.write_image(data.part_image((32, 32)), tmp_path / "a.png")
    copy = tmp_path / "b.png"
    copy.write_bytes(path.read_bytes())
    first, second = load(path, name="../../etc/passwd"), load(copy)
    assert first.name == "../../etc/passwd" and first.path == path
    assert first.id == second.id and "image" in first.describe()


def test_content_decides_when_the_extension_lies(tmp_path):
    real_png = data.write_image(data.part_image((32, 32)), tmp_path / "a.png")
    disguised = tmp_path / "scan.ply"
    disguised.write_bytes(real_png.read_bytes())
    artifact = load(disguised)
    assert artifact.kind == "image" and "although the name ends in .ply" in artifact.meta["note"]


def test_dotted_european_dates_are_read_day_first(tmp_path):
    (tmp_path / "eu.csv").write_text("date;value\n01.02.2024 10:00;1\n13.02.2024 10:00;2\n")
    index = load(tmp_path / "eu.csv").payload.index
    assert [str(t) for t in index] == ["2024-02-01 10:00:00", "2024-02-13 10:00:00"]
