"""Hostile inputs for the security tests: a corpus of broken uploads (one small builder per case), a canary key.

Each `Hostile` case writes one file and says which words the refusal must contain. Files stay
small: a "huge" upload is a sparse file whose size lies, a decompression bomb is a header that
promises billions of pixels over a tiny body, a cloud that claims a billion points is a short
header. Only the ten-million-row CSV is real (20 MB of "1\\n"): the row limit must really count it.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import data

TEN_MILLION = 10_000_000
CANARY = "sk-test.canary.KEY123"  # a planted fake key; deliberately not shaped like a real one (no 24-char run)


@dataclass(frozen=True)
class Hostile:
    """One hostile upload: its file name, how to write it, what the refusal says, and if the app can take it."""

    name: str
    build: Callable[[Path], None]
    says: str  # a phrase the one-line refusal must contain
    uploadable: bool = True  # False: too big for an upload by design (the size check is tested directly)

    def write(self, folder: Path) -> Path:
        """Write the file into folder (once) and return its path."""
        path = Path(folder) / self.name
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            self.build(path)
        return path


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_header(width: int, height: int, body: bytes = b"") -> bytes:
    """A PNG whose header announces width x height pixels over whatever compressed body is given."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(body))
            + _png_chunk(b"IEND", b""))


def _truncated_image(suffix: str, keep: float) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        buffer = io.BytesIO()
        data.part_image((96, 96), defect="spot").save(buffer, format={"png": "PNG", "jpg": "JPEG"}[suffix])
        raw = buffer.getvalue()
        path.write_bytes(raw[: int(len(raw) * keep)])
    return build


def _tiff_bomb(path: Path) -> None:
    """A little-endian TIFF whose only page says 100000 x 100000 RGB pixels (30 GB) in 64 bytes of strip."""
    entries = [(256, 4, 1, 100_000), (257, 4, 1, 100_000), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, 8 + 2 + 12 * 10 + 4), (277, 3, 1, 3), (278, 4, 1, 100_000), (279, 4, 1, 64), (284, 3, 1, 1)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(64))


def _gif_bomb(path: Path) -> None:
    """A real 16 x 16 GIF whose screen and frame descriptors are patched to say 9000 x 9000 (81 M pixels)."""
    buffer = io.BytesIO()
    Image.new("P", (16, 16), 0).save(buffer, format="GIF")
    raw = bytearray(buffer.getvalue())
    size = struct.pack("<HH", 9000, 9000)
    raw[6:10] = size  # logical screen
    frame = raw.index(b"\x2c", 13)  # the image descriptor follows the palette
    raw[frame + 5: frame + 9] = size
    path.write_bytes(bytes(raw))


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.txt", "not a series")
    return buffer.getvalue()


def _ply(header_lines: list[str], body: bytes = b"", encoding: str = "ascii") -> Callable[[Path], None]:
    head = ["ply", f"format {encoding} 1.0", *header_lines, "end_header"]
    return _bytes(("\n".join(head) + "\n").encode() + body)


def _npy_with_shape(path: Path) -> None:
    """A .npy file whose header promises (10^9, 3) float32 points over 36 bytes of data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 3)})
    path.write_bytes(buffer.getvalue() + np.zeros((3, 3), np.float32).tobytes())


def _nan_cloud(path: Path) -> None:
    np.save(path, np.full((200, 3), np.nan, np.float32))


def _sparse(size: int) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        with path.open("wb") as handle:
            handle.truncate(size)  # no disk used; os.stat reports the size
    return build


def _ten_million_rows(path: Path) -> None:
    path.write_bytes(b"value\n" + b"1\n" * TEN_MILLION)


def _broken_mp4(path: Path) -> None:
    data.write_video(path, n=8, size=(48, 32))
    raw = bytearray(path.read_bytes())
    raw[40:] = bytes(len(raw) - 40)  # the 'ftyp' box survives, everything after it is zeros
    path.write_bytes(bytes(raw))


def _truncated_video(suffix: str) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        full = data.write_video(path.with_name("whole" + suffix), n=8, size=(48, 32))
        path.write_bytes(full.read_bytes()[:60])
        full.unlink()
    return build


CORPUS: list[Hostile] = [
    Hostile("zero_byte.png", _bytes(b""), "the file is empty"),
    Hostile("truncated.png", _truncated_image("png", 0.3), "could not read it as PNG image"),
    Hostile("truncated.jpg", _truncated_image("jpg", 0.02), "JPEG image"),
    Hostile("bomb.png", _bytes(png_with_header(40_000, 40_000, bytes(50_000))), "pixels"),
    Hostile("bomb.tif", _tiff_bomb, "pixels"),
    Hostile("bomb.gif", _gif_bomb, "pixels"),
    Hostile("script.png", _bytes(b"<html><script>alert('x')</script></html>\n"), "the content is text"),
    Hostile("archive.csv", _bytes(_zip_bytes()), "not a supported format although its name ends in .csv"),
    Hostile("table.mp4", _bytes(b"time,value\n1,2\n2,3\n"), "the content is text"),
    Hostile("billion_points.ply", _ply(["element vertex 1000000000", "property float x", "property float y",
                                        "property float z"]), "over the limit"),
    Hostile("short_body.ply", _ply(["element vertex 1000", "property float x", "property float y", "property float z"],
                                   np.zeros((10, 3), "<f4").tobytes(), "binary_little_endian"), "truncated"),
    Hostile("short_ascii.ply", _ply(["element vertex 100", "property float x", "property float y", "property float z"],
                                    b"0 0 0\n1 1 1\n"), "truncated"),
    Hostile("negative_count.ply", _ply(["element vertex -5", "property float x"]), "not understood"),
    Hostile("billion_points.pcd", _bytes(b"VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
                                         b"WIDTH 1000000000\nHEIGHT 1\nPOINTS 1000000000\nDATA binary\n" + bytes(24)),
            "over the limit"),
    Hostile("billion_points.npy", _npy_with_shape, "NumPy array"),
    Hostile("nan_cloud.npy", _nan_cloud, "NaN or infinite"),
    Hostile("nan_cloud.xyz", _bytes(b"nan nan nan\n" * 50), "NaN or infinite"),
    Hostile("text_only.csv", _bytes(b"part,colour\nbolt,red\nnut,blue\n"), "no numeric column"),
    Hostile("ten_million_rows.csv", _ten_million_rows, "over the limit of 5,000,000"),
    Hostile("thousand_columns.csv", _bytes((",".join(f"c{i}" for i in range(1000)) + "\n"
                                            + ",".join("1" for _ in range(1000)) + "\n").encode()), "columns"),
    Hostile("deep.json", _bytes(b"[" * 200_000), "JSON series"),
    Hostile("utf16.csv", _bytes("time,value\n1,2\n".encode("utf-16")), "not a supported format"),
    Hostile("broken.mp4", _broken_mp4, "video"),
    Hostile("truncated.avi", _truncated_video(".avi"), "AVI video"),
    Hostile("truncated.gif", _truncated_video(".gif"), "video"),
    Hostile("two_gigabytes.ply", _sparse(2 * 2**30), "over the limit of 512 MB", uploadable=False),
]
BY_NAME = {case.name: case for case in CORPUS}


def write_corpus(folder: Path, *, uploadable_only: bool = False) -> dict[str, Path]:
    """Every case written into folder: {name: path}."""
    return {c.name: c.write(Path(folder)) for c in CORPUS if c.uploadable or not uploadable_only}
