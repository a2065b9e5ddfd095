"""tools.inputs.artifacts.load refuses bad input with one clear InputError line, and limits hold before reading."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.helpers import data
from tools.errors import InputError
from tools.inputs.artifacts import Limits, load


def _refused(path, **kwargs) -> str:
    with pytest.raises(InputError) as caught:
        load(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert "cannot open the file" in _refused(tmp_path / "nope.png")


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    assert "the file is empty" in _refused(tmp_path / "empty.csv")


def test_directory_is_not_a_file(tmp_path):
    assert "is not a file" in _refused(tmp_path)


def test_two_gigabyte_upload_is_refused_from_its_size_in_milliseconds(tmp_path):
    huge = tmp_path / "huge.ply"
    with huge.open("wb") as handle:
        handle.truncate(2 * 2**30)  # sparse: no disk used, os.stat says 2 GB
    started = time.perf_counter()
    message = _refused(huge)
    assert time.perf_counter() - started < 0.05
    assert "2,048 MB, over the limit of 512 MB" in message


def test_ten_million_row_csv_is_refused_before_parsing(tmp_path):
    path = tmp_path / "long.csv"
    path.write_bytes(b"value\n" + b"1\n" * 10_000_000)
    started = time.perf_counter()
    message = _refused(path)
    assert time.perf_counter() - started < 2.0
    assert "number of rows" in message and "over the limit of 5,000,000" in message


def test_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path):
    path = data.write_image(Image.new("RGB", (3000, 2000)), tmp_path / "big.png")
    assert "over the limit of 1,000,000" in _refused(path, limits=Limits(max_pixels=1_000_000))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_png_decompression_bomb_is_refused(tmp_path):
    # A header that announces 20000 x 20000 pixels over a tiny compressed body: 1.2 GB if decoded.
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(bytes(60001) * 20))
    path = tmp_path / "bomb.png"
    path.write_bytes(body + _png_chunk(b"IEND", b""))
    message = _refused(path)
    assert "too large to decode safely" in message and "400000000 pixels" in message and "scale it down" in message


def test_truncated_png(tmp_path):
    path = data.write_image(data.part_image((64, 64)), tmp_path / "cut.png")
    path.write_bytes(path.read_bytes()[:300])
    assert "could not read it as PNG image" in _refused(path)


def test_cloud_with_too_many_points_is_refused_from_its_header(tmp_path):
    path = data.write_cloud(data.surface_points(2000), tmp_path / "c.ply")
    assert "number of points is 2,000, over the limit of 1,000" in _refused(path, limits=Limits(max_points=1000))


@pytest.mark.parametrize("count", [0, 1])
def test_cloud_with_zero_or_one_point(tmp_path, count):
    path = data.write_cloud(np.zeros((count, 3)) + 1.0, tmp_path / "few.ply", encoding="binary_big_endian")
    assert f"has {count} usable point" in _refused(path)


def test_cloud_whose_coordinates_are_all_nan(tmp_path):
    path = data.write_cloud(np.full((50, 3), np.nan), tmp_path / "nan.npy")
    assert "50 with NaN or infinite coordinates dropped" in _refused(path)


def test_cloud_whose_points_coincide(tmp_path):
    path = data.write_cloud(np.ones((10, 3)), tmp_path / "spot.xyz")
    assert "same place" in _refused(path)


def test_ply_with_truncated_header_is_refused_without_crashing(tmp_path):
    # open3d's reader segfaults on this; the header check must stop it first.
    (tmp_path / "cut.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\ncomment")
    assert "header is incomplete" in _refused(tmp_path / "cut.ply")


def test_binary_ply_shorter_than_its_header_promises(tmp_path):
    path = data.write_cloud(data.surface_points(100), tmp_path / "c.ply")
    path.write_bytes(path.read_bytes()[:-100])
    assert "truncated" in _refused(path)


def test_series_without_numbers(tmp_path):
    (tmp_path / "words.csv").write_text("name,colour\nbolt,red\nnut,blue\n")
    assert "no numeric column" in _refused(tmp_path / "words.csv")


def test_series_header_only(tmp_path):
    (tmp_path / "head.csv").write_text("timestamp,value\n")
    assert "no rows" in _refused(tmp_path / "head.csv")


def test_json_that_is_not_a_series(tmp_path):
    (tmp_path / "conf.json").write_text('{"a": {"b": 1}}')
    assert "JSON layout is not a series" in _refused(tmp_path / "conf.json")


def test_unreadable_video(tmp_path):
    path = data.write_video(tmp_path / "clip.mp4", n=10)
    raw = bytearray(path.read_bytes())
    raw[40:] = bytes(len(raw) - 40)  # keep the 'ftyp' box, zero everything else
    path.write_bytes(bytes(raw))
    message = _refused(path)
    assert "clip.mp4" in message and ("video" in message or "MP4" in message)


def test_text_with_a_binary_extension(tmp_path):
    (tmp_path / "scan.pcd").write_text("hello\n")
    assert "content is text, not a PCD point cloud" in _refused(tmp_path / "scan.pcd")


def test_binary_with_a_text_extension(tmp_path):
    (tmp_path / "series.csv").write_bytes(bytes(range(256)) * 4)
    assert "not a supported format although its name ends in .csv" in _refused(tmp_path / "series.csv")


def test_unknown_binary_without_extension(tmp_path):
    (tmp_path / "blob").write_bytes(b"\x00\x01\x02garbage" * 20)
    assert "supported: PNG" in _refused(tmp_path / "blob")
