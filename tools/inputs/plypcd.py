"""PLY and PCD point clouds: the header is parsed and checked here, the body read with numpy.

open3d's PLY reader crashes the process (segmentation fault) on a truncated header, so no file
reaches open3d before its header has been checked here. PLY (ascii, binary little/big endian)
and PCD (ascii, binary) bodies are read with numpy; only PCD binary_compressed (LZF) goes to
open3d, after its header and size fields have been checked.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from tools.errors import InputError
from tools.inputs.base import Limits, refuse_over

_HEADER_MAX = 65536
_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
_PLY_FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
_PCD_TYPES = {("F", 4): "f4", ("F", 8): "f8", ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8",
              ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4", ("I", 8): "i8"}
_PLY_COLOURS = ("red", "green", "blue")
_TOO_MANY = "downsample the cloud (for example with a voxel grid) and upload again"


def _split_header(raw: bytes, end_marker: bytes, what: str) -> tuple[list[str], int]:
    """Header lines (decoded) and the offset of the body."""
    end = raw.find(end_marker, 0, _HEADER_MAX)
    if end < 0:
        raise InputError(f"the {what} header is incomplete (no '{end_marker.decode().strip()}' line); the file is truncated or not {what}")
    stop = raw.find(b"\n", end + 1)
    if stop < 0:
        raise InputError(f"the {what} header has no end of line after '{end_marker.decode().strip()}'; the file is truncated")
    text = raw[:stop].decode("ascii", errors="strict")
    return text.replace("\r", "").split("\n"), stop + 1


def read_ply(path: Path, limits: Limits) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """Vertex x, y, z of a PLY file, and its red, green, blue (uint8) when it has them."""
    raw = path.read_bytes()
    lines, offset = _split_header(raw, b"end_header", "PLY")
    byte_order, elements = _parse_ply_header(lines)
    names = [e[0] for e in elements]
    if "vertex" not in names:
        raise InputError("the PLY file has no 'vertex' element; export the point cloud with its vertices")
    index = names.index("vertex")
    count, props = elements[index][1], elements[index][2]
    refuse_over("the number of points", count, limits.max_points, _TOO_MANY)
    columns = [p[0] for p in props]
    if any(p[1] == "list" for p in props):
        raise InputError("the PLY vertex element has a list property; export plain x, y, z vertices")
    if not {"x", "y", "z"} <= set(columns):
        raise InputError(f"the PLY vertices have no x, y, z properties (found {columns}); export them with coordinates")
    meta = {"format": "ply", "encoding": lines[1].split()[1], "properties": columns}
    wanted = [*"xyz", *(_PLY_COLOURS if set(_PLY_COLOURS) <= set(columns) else ())]
    if byte_order is None:
        skip = sum(e[1] for e in elements[:index])
        rows = _read_ascii_rows(raw[offset:], skip, count, [columns.index(a) for a in wanted], "PLY")
    else:
        start = offset + sum(_fixed_size(e) * e[1] for e in elements[:index])
        dtype = np.dtype([(name, byte_order + _PLY_TYPES[kind]) for name, kind in props])
        table = _frombuffer(raw, dtype, count, start, "PLY")
        rows = np.stack([np.asarray(table[a], np.float64) for a in wanted], axis=1) if count else np.empty((0, len(wanted)))
    colour_kind = dict(props).get("red")
    return rows[:, :3], meta, _colours(rows[:, 3:], colour_kind) if len(wanted) > 3 else None


def _colours(values: np.ndarray, kind: str | None) -> np.ndarray:
    """Colour columns as uint8: 0..1 floats are scaled, wider integers shifted down to 8 bits."""
    if kind in ("float", "float32", "double", "float64"):
        values = values * 255.0
    elif kind in ("ushort", "uint16", "short", "int16"):
        values = values / 257.0
    return np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)


def _parse_ply_header(lines: list[str]) -> tuple[str | None, list]:
    if lines[0].strip() != "ply" or len(lines) < 2:
        raise InputError("the file does not start with a PLY header ('ply'); check the file type")
    fmt = lines[1].split()
    if len(fmt) < 2 or fmt[0] != "format" or fmt[1] not in _PLY_FORMATS:
        raise InputError(f"unknown PLY format line {lines[1]!r}; expected ascii or binary_little/big_endian")
    elements: list = []
    for line in lines[2:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info", "end_header"):
            continue
        if words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements:
            elements[-1][2].append(_ply_property(words))
        else:
            raise InputError(f"the PLY header has a line that is not understood: {line[:60]!r}; export the file again")
    return _PLY_FORMATS[fmt[1]], elements


def _ply_property(words: list[str]) -> tuple[str, str]:
    if len(words) == 5 and words[1] == "list" and words[2] in _PLY_TYPES and words[3] in _PLY_TYPES:
        return words[4], "list"
    if len(words) == 3 and words[1] in _PLY_TYPES:
        return words[2], words[1]
    raise InputError(f"the PLY header has a property that is not understood: {' '.join(words)[:60]!r}")


def _fixed_size(element) -> int:
    if any(kind == "list" for _, kind in element[2]):
        raise InputError(f"the PLY element {element[0]!r} before the vertices has list properties; put the vertices first")
    return sum(np.dtype(_PLY_TYPES[kind]).itemsize for _, kind in element[2])


def _frombuffer(raw: bytes, dtype: np.dtype, count: int, start: int, what: str) -> np.ndarray:
    needed = start + count * dtype.itemsize
    if needed > len(raw):
        raise InputError(f"the {what} file is truncated: {count:,} points need {needed:,} bytes, the file has {len(raw):,}")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=start)


def _read_ascii_rows(body: bytes, skip: int, count: int, columns: list[int], what: str) -> np.ndarray:
    if count == 0:
        return np.empty((0, 3))
    text = io.StringIO(body.decode("ascii", errors="strict"))
    rows = np.loadtxt(text, dtype=np.float64, skiprows=skip, max_rows=count, usecols=columns, ndmin=2)
    if len(rows) < count:
        raise InputError(f"the {what} file is truncated: the header promises {count:,} points, the file has {len(rows):,}")
    return rows


def read_pcd(path: Path, limits: Limits) -> tuple[np.ndarray, dict]:
    """x, y, z of a PCD file (ascii, binary, or binary_compressed through open3d)."""
    raw = path.read_bytes()
    lines, offset = _split_header(raw, b"\nDATA ", "PCD")
    header = _parse_pcd_header(lines)
    count, fields = header["points"], header["fields"]
    refuse_over("the number of points", count, limits.max_points, _TOO_MANY)
    meta = {"format": "pcd", "encoding": header["data"], "properties": [f[0] for f in fields]}
    if header["width"] * header["height"] == count and header["height"] > 1:
        meta["organised"] = [header["height"], header["width"]]
    if header["data"] == "ascii":
        starts = np.cumsum([0] + [f[3] for f in fields])
        columns = [int(starts[[f[0] for f in fields].index(a)]) for a in "xyz"]
        return _read_ascii_rows(raw[offset:], 0, count, columns, "PCD"), meta
    dtype = np.dtype([(name, "<" + kind, (n,)) if n > 1 else (name, "<" + kind) for name, kind, _, n in fields])
    if header["data"] == "binary":
        table = _frombuffer(raw, dtype, count, offset, "PCD")
        return np.stack([table[a] for a in "xyz"], axis=1), meta
    return _read_compressed_pcd(path, raw, offset, count * dtype.itemsize), meta


def _parse_pcd_header(lines: list[str]) -> dict:
    entries = {}
    for line in lines:
        words = line.split()
        if words and not words[0].startswith("#"):
            entries[words[0].upper()] = words[1:]
    try:
        names, sizes, types = entries["FIELDS"], [int(s) for s in entries["SIZE"]], entries["TYPE"]
        counts = [int(c) for c in entries.get("COUNT", ["1"] * len(names))]
        width, height = int(entries["WIDTH"][0]), int(entries.get("HEIGHT", ["1"])[0])
        points = int(entries.get("POINTS", [str(width * height)])[0])
        data = entries["DATA"][0].lower()
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(f"the PCD header is incomplete or malformed ({exc}); export the file again") from exc
    if not len(names) == len(sizes) == len(types) == len(counts) or min(counts + [width, height, points]) < 0:
        raise InputError("the PCD header's FIELDS, SIZE, TYPE and COUNT lines do not agree; export the file again")
    if any((t, s) not in _PCD_TYPES for t, s in zip(types, sizes, strict=True)) or min(counts, default=1) < 1:
        raise InputError("the PCD header has a field type or size that is not understood; export the file again")
    if not {"x", "y", "z"} <= set(names) or data not in ("ascii", "binary", "binary_compressed"):
        raise InputError(f"the PCD file needs x, y, z fields and ascii/binary data (found {names}, {data})")
    fields = [(n, _PCD_TYPES[(t, s)], s, c) for n, t, s, c in zip(names, types, sizes, counts, strict=True)]
    return {"fields": fields, "width": width, "height": height, "points": points, "data": data}


def _read_compressed_pcd(path: Path, raw: bytes, offset: int, expected: int) -> np.ndarray:
    sizes = np.frombuffer(raw, dtype="<u4", count=2, offset=offset) if len(raw) >= offset + 8 else None
    if sizes is None or int(sizes[1]) != expected or int(sizes[0]) > len(raw) - offset - 8:
        raise InputError("the compressed PCD data is truncated or its sizes do not match the header; export it again")
    if expected == 0:
        return np.empty((0, 3))
    import open3d as o3d

    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    cloud = o3d.io.read_point_cloud(str(path), format="pcd", remove_nan_points=False, remove_infinite_points=False)
    return np.asarray(cloud.points)
