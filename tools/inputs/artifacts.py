"""One typed Artifact for every upload: image, point cloud, series or video.

`load(path)` detects the format from the file's content (magic bytes) together with its
extension, checks the size limits before reading, and returns an `Artifact`. Every problem with
the file comes back as `InputError` with a one-line message that says what to do; no other
exception type leaves `load()`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tokenize
import unicodedata
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.agent.fence import as_data
from tools.errors import InputError
from tools.inputs import recent
from tools.inputs.base import Limits, Loaded, one_line
from tools.inputs.cloud import read_npy, read_pcd_file, read_ply_file, read_text_cloud
from tools.inputs.image import read_image, read_tiff
from tools.inputs.series import read_csv, read_json, read_parquet
from tools.inputs.video import read_video
from tools.vocabulary import MODALITIES

__all__ = ["Artifact", "Limits", "FORMATS", "KINDS", "load", "detect_format", "display_name", "accepted_extensions"]
KINDS = MODALITIES
MAX_NAME_CHARS = 120
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn"}  # control, format (bidi overrides, zero width), surrogate, private, unassigned
log = logging.getLogger(__name__)


@dataclass(eq=False)
class Artifact:
    """A loaded upload. `name` is for display only; `path` is where it was read from."""

    kind: str  # image | point_cloud | series | video
    path: Path
    name: str
    sha256: str
    meta: dict  # sizes, counts, columns, fps ... (JSON-serialisable)
    payload: Any  # PIL RGB image | float32 (N, 3) points | DataFrame | list of (seconds, PIL image)
    extra: dict = field(default_factory=dict)  # organised grid, labels, frame change scores

    @property
    def id(self) -> str:
        """Short stable id: the first 12 hex digits of the content's SHA-256."""
        return self.sha256[:12]

    def describe(self, *, as_model_data: bool = False) -> str:
        """One line for a person or (as_model_data: name and sizes fenced as data) a model."""
        if as_model_data:  # the name and the column names come from the file: never instructions
            return (f"{self.kind.replace('_', ' ')} {as_data(self.name, 'file_name')} (id {self.id}): "
                    f"{as_data(_summary(self), 'evidence')}")
        return f"{self.kind.replace('_', ' ')} {self.name!r} (id {self.id}): {_summary(self)}"


@dataclass(frozen=True)
class Format:
    """A file format: its label, the extensions it uses and the loader that reads it."""

    label: str
    extensions: tuple[str, ...]
    loader: Callable[[Path, Limits], Loaded]


FORMATS: dict[str, Format] = {
    "png": Format("PNG image", (".png",), read_image),
    "jpeg": Format("JPEG image", (".jpg", ".jpeg", ".jpe"), read_image),
    "bmp": Format("BMP image", (".bmp",), read_image),
    "tiff": Format("TIFF image or point grid", (".tif", ".tiff"), read_tiff),
    "ply": Format("PLY point cloud", (".ply",), read_ply_file),
    "pcd": Format("PCD point cloud", (".pcd",), read_pcd_file),
    "xyz": Format("text point cloud", (".xyz", ".pts", ".txt"), read_text_cloud),
    "npy": Format("NumPy array", (".npy",), read_npy),
    "csv": Format("CSV table", (".csv",), read_csv),
    "tsv": Format("TSV table", (".tsv", ".tab"), lambda path, limits: read_csv(path, limits, sep="\t")),
    "parquet": Format("Parquet table", (".parquet", ".pq"), read_parquet),
    "json": Format("JSON series", (".json",), read_json),
    "mp4": Format("MP4/MOV video", (".mp4", ".m4v", ".mov"), read_video),
    "avi": Format("AVI video", (".avi",), read_video),
    "mkv": Format("Matroska/WebM video", (".mkv", ".webm"), read_video),
    "gif": Format("GIF animation", (".gif",), read_video),
}
_BY_EXTENSION = {ext: name for name, fmt in FORMATS.items() for ext in fmt.extensions}


def accepted_extensions() -> list[str]:
    """Every file extension a loader reads (what an upload box should accept), in FORMATS order."""
    return list(_BY_EXTENSION)
_TEXT_FORMATS = {"csv", "tsv", "json", "xyz"}
# What readers raise on damaged input (numpy's .npy header parser raises tokenize.TokenError).
READ_ERRORS = (ValueError, OSError, EOFError, IndexError, KeyError, TypeError, AttributeError, struct.error,
               zlib.error, SyntaxError, OverflowError, RuntimeError, ArithmeticError, tokenize.TokenError)


def load(path: str | os.PathLike, *, name: str | None = None, limits: Limits | None = None) -> Artifact:
    """Read an upload into an Artifact, or raise InputError saying what is wrong and what to do."""
    path, limits = Path(path), limits or Limits()
    shown = display_name(name or path.name)
    size = _checked_size(path, shown, limits)
    fmt = detect_format(path, _head(path))
    sha256 = _sha256(path)
    key = (sha256, fmt, path.suffix.lower(), limits)  # what the result depends on besides the name
    kept = recent.get(key)  # the same image read a moment ago (an evaluation's references): not decoded again
    if kept:
        return Artifact(kept[0], path, shown, sha256, *kept[1:])
    artifact = _read(path, shown, fmt, sha256, size, limits)
    recent.put(key, artifact.kind, artifact.meta, artifact.payload, artifact.extra)
    return artifact


def _read(path: Path, shown: str, fmt: str, sha256: str, size: int, limits: Limits) -> Artifact:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = FORMATS[fmt].loader(path, limits)
    except InputError as exc:
        raise InputError(f"{shown}: {exc}") from exc
    except MemoryError as exc:
        raise InputError(f"{shown}: not enough memory to read it; upload a smaller file") from exc
    except READ_ERRORS as exc:
        log.debug("reading %s as %s failed", path, fmt, exc_info=True)
        reason = one_line(exc, 400).replace(str(path), shown)  # a reader's message names the server-side path
        raise InputError(f"{shown}: could not read it as {FORMATS[fmt].label} ({one_line(reason, 120)}); "
                         "check that the file is complete and of that type, or export it again") from exc
    meta = {"format": fmt, "bytes": size, **loaded.meta}
    if caught:  # a reader's complaints (a truncated TIFF strip, odd metadata) travel with the artifact
        meta["warnings"] = sorted({one_line(w.message, 100) for w in caught})[:5]
    _note_mismatch(path, fmt, meta)
    return Artifact(loaded.kind, path, shown, sha256, meta, loaded.payload, loaded.extra)


def display_name(name: str) -> str:
    """A file name fit to show: without control or bidi characters, at most 120 characters.

    Names come from people (an upload's name) and are only ever shown, never used as a path.
    """
    visible = "".join(c for c in str(name) if unicodedata.category(c) not in _INVISIBLE)
    shown = " ".join(visible.split()) or "upload"
    return shown if len(shown) <= MAX_NAME_CHARS else shown[: MAX_NAME_CHARS - 1] + "…"


def _checked_size(path: Path, shown: str, limits: Limits) -> int:
    """The file's size from os.stat, refused before any reading when empty or over the limit."""
    try:
        info = path.stat()
    except OSError as exc:
        raise InputError(f"{shown}: cannot open the file ({exc.strerror or exc}); check the path") from exc
    if not path.is_file():
        raise InputError(f"{shown}: is not a file; give the path of an image, point cloud, series or video")
    if info.st_size == 0:
        raise InputError(f"{shown}: the file is empty; upload it again")
    if info.st_size > limits.max_bytes:
        raise InputError(f"{shown}: the file is {info.st_size / 2**20:,.0f} MB, over the limit of "
                         f"{limits.max_bytes / 2**20:,.0f} MB; upload a smaller or downsampled file")
    return info.st_size


def _head(path: Path, size: int = 4096) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read the file ({exc.strerror or exc}); check its permissions") from exc


def detect_format(path: Path, head: bytes) -> str:
    """The format key in FORMATS, from the content first and the extension for text formats."""
    by_content = _magic(head)
    if by_content:
        return by_content
    ext = path.suffix.lower()
    if _looks_binary(head):
        expected = f" although its name ends in {ext}" if ext in _BY_EXTENSION else ""
        raise InputError(f"{path.name}: the content is not a supported format{expected}; supported: "
                         "PNG, JPEG, BMP, TIFF, PLY, PCD, XYZ, NPY, CSV, TSV, Parquet, JSON, MP4, AVI, MOV, GIF")
    by_extension = _BY_EXTENSION.get(ext)
    if by_extension in _TEXT_FORMATS:
        return "xyz" if by_extension == "xyz" and _text_is_cloud(head) else _series_format(by_extension, head)
    if by_extension:
        raise InputError(f"{path.name}: the name ends in {ext} but the content is text, not a "
                         f"{FORMATS[by_extension].label}; check the file or give it the right extension")
    return _sniff_text(head, path.name)


def _magic(head: bytes) -> str | None:
    checks = [
        (head.startswith(b"\x89PNG\r\n\x1a\n"), "png"), (head.startswith(b"\xff\xd8\xff"), "jpeg"),
        (head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), "tiff"),
        (head.startswith((b"GIF87a", b"GIF89a")), "gif"), (head.startswith(b"\x93NUMPY"), "npy"),
        (head.startswith(b"PAR1"), "parquet"), (head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide"), "mp4"),
        (head[:4] == b"RIFF" and head[8:12] == b"AVI ", "avi"), (head.startswith(b"\x1aE\xdf\xa3"), "mkv"),
        (head.startswith((b"ply\n", b"ply\r\n")), "ply"), (_is_pcd(head), "pcd"), (_is_bmp(head), "bmp"),
    ]
    return next((fmt for matched, fmt in checks if matched), None)


def _is_bmp(head: bytes) -> bool:
    return head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)


def _is_pcd(head: bytes) -> bool:
    start = head.lstrip()[:400]
    return (start.startswith(b"#") and b".PCD" in start) or start.startswith((b"VERSION", b"FIELDS"))


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    try:
        head[:-4].decode("utf-8")  # the last bytes may cut a multi-byte character
    except UnicodeDecodeError:
        return True
    return False


def _data_lines(head: bytes) -> list[str]:
    lines = head.decode("utf-8", errors="replace").splitlines()[:-1] or head.decode("utf-8", "replace").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith(("#", "//"))]


def _text_is_cloud(head: bytes) -> bool:
    """A .txt/.xyz table is a point cloud when it has x y z columns or three or more numeric columns."""
    lines = _data_lines(head)
    if not lines:
        return True
    words = lines[0].replace(",", " ").replace(";", " ").split()
    if all(_is_number(w) for w in words):
        return len(words) >= 3 or (len(words) == 1 and len(lines) > 1)  # .pts starts with a count
    return [w.lower() for w in words[:3]] == ["x", "y", "z"]


def _series_format(by_extension: str, head: bytes) -> str:
    if by_extension == "xyz":
        return "tsv" if "\t" in (_data_lines(head) or [""])[0] else "csv"
    return by_extension


def _sniff_text(head: bytes, shown: str) -> str:
    start = head.lstrip()[:1]
    if start in (b"{", b"["):
        return "json"
    lines = _data_lines(head)
    if not lines:
        raise InputError(f"{shown}: the file holds no data; upload a file with content")
    return "xyz" if _text_is_cloud(head) else _series_format("xyz", head)


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _note_mismatch(path: Path, fmt: str, meta: dict) -> None:
    ext = path.suffix.lower()
    named = _BY_EXTENSION.get(ext)
    both_text = fmt in _TEXT_FORMATS and named in _TEXT_FORMATS  # a .txt table read as CSV is not a mismatch
    if named and ext not in FORMATS[fmt].extensions and not both_text:
        meta["note"] = f"the content is {FORMATS[fmt].label} although the name ends in {ext}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _summary(artifact: Artifact) -> str:
    meta = artifact.meta
    summaries = {
        "image": lambda: f"{meta.get('width')}x{meta.get('height')} pixels",
        "point_cloud": lambda: f"{meta.get('points', 0):,} points" + (
            f", organised {meta['organised'][0]}x{meta['organised'][1]}" if "organised" in meta else ""),
        "series": lambda: f"{meta.get('rows', 0):,} rows, columns {', '.join(meta.get('columns', []))}" + (
            f", from {meta['start']} to {meta['end']}" if "start" in meta else ""),
        "video": lambda: f"{meta.get('frames')} frames, {meta.get('duration_s')} s, {meta.get('width')}x{meta.get('height')}",
    }
    return summaries[artifact.kind]()
