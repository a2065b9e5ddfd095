"""Hostile and broken uploads: every one is refused with one clear line, fast, and headers cannot lie past a limit.

The corpus (tests/helpers/hostile.py) covers named attacks; the properties below fuzz the headers
of each format with hypothesis (counts, shapes, sizes and names chosen by the fuzzer), which the
byte-level fuzzing of tests/test_artifacts_fuzz.py rarely reaches.
"""

from __future__ import annotations

import io
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.hostile import CORPUS, png_with_header
from tools.errors import InputError
from tools.inputs.artifacts import Artifact, Limits, load

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SECONDS_PER_REFUSAL = 3.0  # the ten-million-row CSV included: limits are checked before parsing


def _refusal(path, **kwargs) -> str:
    with pytest.raises(InputError) as caught:
        load(path, **kwargs)
    return str(caught.value)


def _loads_or_refuses(path, limits: Limits | None = None) -> Artifact | None:
    """The artifact, or None after a one-line InputError; any other exception fails the test."""
    try:
        return load(path, limits=limits)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_hostile_file_is_refused_with_one_line_that_says_why(tmp_path, case):
    path = case.write(tmp_path)
    started = time.perf_counter()
    message = _refusal(path)
    assert time.perf_counter() - started < SECONDS_PER_REFUSAL
    assert "\n" not in message and message.startswith(f"{case.name}: ") and case.says in message


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_refusal_never_shows_the_server_side_path(tmp_path, case):
    folder = tmp_path / "server-side-upload-folder"
    assert str(folder) not in _refusal(case.write(folder), name="part.bin")


# -- header fuzzing --------------------------------------------------------------------------------
PLY_NUMPY = {"char": "i1", "uchar": "u1", "short": "i2", "ushort": "u2", "int": "i4", "uint": "u4", "float": "f4",
             "double": "f8", "float32": "f4", "float64": "f8"}
PLY_TYPES = list(PLY_NUMPY)
PCD_TYPES = [("F", 4), ("F", 8), ("U", 1), ("U", 2), ("I", 2), ("I", 4), ("I", 8), ("F", 2)]
COUNTS = st.one_of(st.integers(0, 40), st.integers(0, 10**12))  # mostly small, sometimes absurd


def _numbers_text(draw, rows: int, columns: int) -> bytes:
    """Lines of numbers (NaN and inf among them), now and then a word: an ascii body of any length."""
    def cell() -> str:
        if draw(st.integers(0, 30)) == 0:
            return draw(st.sampled_from(["x", "1e999", "--"]))
        return repr(draw(st.floats(allow_nan=True, allow_infinity=True, width=32)))
    lines = [" ".join(cell() for _ in range(columns)) for _ in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _binary_body(draw, rows: int, row_bytes: int) -> bytes:
    """Exactly the rows' bytes most of the time, else a body of any shorter or longer length."""
    size = rows * row_bytes if draw(st.integers(0, 3)) else draw(st.integers(0, rows * row_bytes + 16))
    return draw(st.binary(min_size=size, max_size=size))


def _properties(draw, required=("x", "y", "z")) -> list[str]:
    extras = draw(st.lists(st.sampled_from(["nx", "red", "intensity"]), max_size=2, unique=True))
    names = draw(st.permutations([*required, *extras]))
    return names if draw(st.integers(0, 9)) else names[:-1]  # now and then a coordinate is missing


@st.composite
def ply_files(draw) -> bytes:
    """A nearly valid PLY: vertex x, y, z of any types, a count that may lie, a body that may be short."""
    encoding = draw(st.sampled_from(["ascii", "binary_little_endian", "binary_big_endian"]))
    lines = ["ply", f"format {encoding} 1.0"]
    if draw(st.booleans()):  # an element before the vertices, whose size shifts where they start
        lines += [f"element camera {draw(COUNTS)}", "property float focal"]
    names, count = _properties(draw), draw(COUNTS)
    types = [draw(st.sampled_from(PLY_TYPES)) for _ in names]
    lines += [f"element vertex {count}", *(f"property {kind} {name}" for kind, name in zip(types, names, strict=True))]
    rows = min(count, 40) if draw(st.integers(0, 3)) else draw(st.integers(0, 43))
    row_bytes = sum(np.dtype(PLY_NUMPY[kind]).itemsize for kind in types)
    body = _numbers_text(draw, rows, len(names)) if encoding == "ascii" else _binary_body(draw, rows, row_bytes)
    return ("\n".join([*lines, "end_header"]) + "\n").encode() + body


@FUZZ
@given(content=ply_files())
def test_ply_header_with_any_counts_loads_within_what_it_holds_or_is_refused(tmp_path, content):
    path = tmp_path / "fuzz.ply"
    path.write_bytes(content)
    artifact = _loads_or_refuses(path)
    if artifact is not None:
        assert artifact.payload.shape[1] == 3 and np.isfinite(artifact.payload).all()
        assert artifact.payload.nbytes <= 12 * len(content)  # no point comes from nowhere


@st.composite
def pcd_files(draw) -> bytes:
    """A nearly valid PCD: x, y, z of any types and counts, WIDTH/HEIGHT/POINTS that may disagree or lie."""
    names = _properties(draw)
    kinds = [draw(st.sampled_from(PCD_TYPES)) for _ in names]
    counts = [draw(st.sampled_from([1, 1, 1, 1, 2, 10**9])) for _ in names]
    width, height = draw(COUNTS), draw(st.sampled_from([1, 1, 2, 3, 10**6]))
    points = width * height if draw(st.booleans()) else draw(COUNTS)
    data = draw(st.sampled_from(["ascii", "binary", "binary_compressed"]))
    head = [f"FIELDS {' '.join(names)}", f"SIZE {' '.join(str(k[1]) for k in kinds)}",
            f"TYPE {' '.join(k[0] for k in kinds)}", f"COUNT {' '.join(map(str, counts))}",
            f"WIDTH {width}", f"HEIGHT {height}", f"POINTS {points}", f"DATA {data}"]
    rows = min(points, 40) if draw(st.integers(0, 3)) else draw(st.integers(0, 43))
    row_bytes = sum(k[1] * min(c, 4) for k, c in zip(kinds, counts, strict=True))
    body = _numbers_text(draw, rows, len(names)) if data == "ascii" else _binary_body(draw, rows, row_bytes)
    return ("VERSION 0.7\n" + "\n".join(head) + "\n").encode() + body


@FUZZ
@given(content=pcd_files())
def test_pcd_header_with_any_sizes_loads_or_is_refused(tmp_path, content):
    path = tmp_path / "fuzz.pcd"
    path.write_bytes(content)
    artifact = _loads_or_refuses(path)
    if artifact is not None:
        assert np.isfinite(artifact.payload).all()


@FUZZ
@given(shape=st.lists(st.integers(0, 10**10), min_size=0, max_size=4).map(tuple),
       descr=st.sampled_from(["<f4", ">f8", "<i2", "|u1", "<c8", "|b1", "<M8[s]", "|V12", "<U3"]),
       body=st.binary(max_size=200))
def test_npy_header_with_any_shape_and_type_loads_or_is_refused(tmp_path, shape, descr, body):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    path = tmp_path / "fuzz.npy"
    path.write_bytes(buffer.getvalue() + body)
    _loads_or_refuses(path)


@FUZZ
@given(width=st.integers(0, 2**31 - 1), height=st.integers(0, 2**31 - 1), body=st.binary(max_size=200))
def test_png_header_over_the_pixel_limit_is_always_refused(tmp_path, width, height, body):
    path = tmp_path / "fuzz.png"
    path.write_bytes(png_with_header(width, height, body))
    limits = Limits(max_pixels=1_000_000)
    artifact = _loads_or_refuses(path, limits)
    if width * height > limits.max_pixels:
        assert artifact is None


@FUZZ
@given(names=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=6),
       cells=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=12)),
                      min_size=1, max_size=60))
def test_csv_with_any_column_names_and_cells_loads_or_is_refused(tmp_path, names, cells):
    header = ",".join('"' + n.replace('"', '""') + '"' for n in names)
    rows = [",".join('"' + c.replace('"', '""') + '"' for c in cells[i:i + len(names)])
            for i in range(0, len(cells), len(names))]
    path = tmp_path / "fuzz.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8", errors="surrogatepass")
    artifact = _loads_or_refuses(path)
    if artifact is not None:
        assert all(isinstance(c, str) for c in artifact.payload.columns)


@FUZZ
@given(width=st.integers(0, 65535), height=st.integers(0, 65535))
def test_gif_header_over_the_pixel_limit_is_always_refused(tmp_path, width, height):
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00\x3b"
    path = tmp_path / "fuzz.gif"
    path.write_bytes(screen + frame)
    limits = Limits(max_pixels=1_000_000)
    artifact = _loads_or_refuses(path, limits)
    if width * height > limits.max_pixels:
        assert artifact is None
