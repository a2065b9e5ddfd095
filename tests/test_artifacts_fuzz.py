"""Property: any bytes under any supported name load as an Artifact or raise InputError, nothing else.

Seeds are valid files of every format; hypothesis truncates them, flips bytes, inserts junk, or
replaces them with random bytes. A crash of a native reader would kill the test run itself.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import data
from tools.errors import InputError
from tools.inputs.artifacts import Artifact, load

SEEDS = ["png", "jpg", "bmp", "tif", "grid.tiff", "ascii.ply", "binary.ply", "ascii.pcd", "binary.pcd",
         "binary_compressed.pcd", "xyz", "npy", "csv", "parquet", "json", "mp4", "gif", "avi"]
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    """Valid small files of every format, as bytes."""
    folder = tmp_path_factory.mktemp("seeds")
    image, points = data.part_image((48, 40), defect="spot"), data.surface_points(60, defect="bump")
    paths = {name: data.write_image(image, folder / f"seed.{name}") for name in ("png", "jpg", "bmp", "tif")}
    paths["grid.tiff"] = data.write_cloud(data.surface_grid(12, 10), folder / "grid.tiff")
    for name in ("ascii.ply", "binary.ply", "ascii.pcd", "binary.pcd", "binary_compressed.pcd"):
        encoding, suffix = name.split(".")
        paths[name] = data.write_cloud(points, folder / f"{encoding}.{suffix}", encoding=encoding)
    paths["xyz"], paths["npy"] = data.write_cloud(points, folder / "c.xyz"), data.write_cloud(points, folder / "c.npy")
    frame = data.series_frame(40, columns=("a", "b"), spikes=((20, 4.0),))
    for name in ("csv", "parquet", "json"):
        paths[name] = data.write_series(frame, folder / f"s.{name}")
    for name in ("mp4", "gif", "avi"):
        paths[name] = data.write_video(folder / f"v.{name}", n=6, size=(32, 24), odd_frame=3)
    return {name: path.read_bytes() for name, path in paths.items()}


@st.composite
def mutations(draw, original: bytes) -> bytes:
    """A truncation, byte flips, an insertion, or a spliced header of the original."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "head_only"]))
    if kind == "truncate":
        return original[: draw(st.integers(0, len(original) - 1))]
    if kind == "head_only":
        return original[: draw(st.integers(1, 64))] + draw(st.binary(max_size=200))
    raw = bytearray(original)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return bytes(raw)
    at = draw(st.integers(0, len(raw)))
    return bytes(raw[:at]) + draw(st.binary(min_size=1, max_size=40)) + bytes(raw[at:])


def _loads_or_refuses(path) -> None:
    try:
        artifact = load(path)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(artifact, Artifact) and artifact.kind in ("image", "point_cloud", "series", "video")


@pytest.mark.parametrize("seed", SEEDS)
@FUZZ
@given(data=st.data())
def test_mutated_file_loads_or_is_refused(tmp_path, seeds, seed, data):
    path = tmp_path / f"upload.{seed.split('.')[-1]}"
    path.write_bytes(data.draw(mutations(seeds[seed]), label="content"))
    _loads_or_refuses(path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(min_size=0, max_size=600),
       suffix=st.sampled_from(["", ".png", ".tif", ".ply", ".pcd", ".xyz", ".txt", ".npy", ".csv", ".json",
                               ".parquet", ".mp4", ".gif", ".avi", ".bin"]))
def test_random_bytes_load_or_are_refused(tmp_path, content, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(content)
    _loads_or_refuses(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("0123456789.,-e \n\tabcxyz:;#nai")), max_size=300),
       suffix=st.sampled_from([".csv", ".tsv", ".txt", ".xyz", ".pts", ".json"]))
def test_random_text_tables_load_or_are_refused(tmp_path, text, suffix):
    path = tmp_path / f"table{suffix}"
    path.write_text(text)
    _loads_or_refuses(path)
