"""Point clouds -> float32 (N, 3) points; NaN/inf dropped; organised grids kept beside them.

Formats: PLY and PCD (tools/inputs/plypcd.py), text x y z (.xyz/.pts/.txt), NumPy .npy ((N, 3+)
or organised (H, W, 3+)), and MVTec 3D-AD organised TIFF (H x W x 3 float32, zeros = no point).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from tools.errors import InputError
from tools.inputs.base import Limits, Loaded, refuse_over
from tools.inputs.plypcd import read_pcd, read_ply

_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(nan|inf|infinity)$", re.IGNORECASE)
_TOO_MANY = "downsample the cloud (for example with a voxel grid) and upload again"


def read_ply_file(path: Path, limits: Limits) -> Loaded:
    """A PLY point cloud (its vertex colours kept when it has them)."""
    points, meta, colours = read_ply(path, limits)
    return finish_cloud(points, meta, limits, colours)


def read_pcd_file(path: Path, limits: Limits) -> Loaded:
    """A PCD point cloud; an organised one (HEIGHT > 1) keeps its grid."""
    points, meta = read_pcd(path, limits)
    if "organised" in meta:
        height, width = meta["organised"]
        return finish_grid(np.asarray(points, np.float64).reshape(height, width, 3), meta, limits)
    return finish_cloud(points, meta, limits)


def read_text_cloud(path: Path, limits: Limits) -> Loaded:
    """Text with one point per line: x y z [more columns], space, tab, comma or semicolon separated."""
    text = path.read_bytes().decode("utf-8", errors="strict")
    lines = [line.strip() for line in text.splitlines()]
    refuse_over("the number of lines", len(lines), limits.max_points + 10, _TOO_MANY)
    data = [i for i, line in enumerate(lines) if line and not line.startswith(("#", "//"))]
    if not data:
        raise InputError("the text file holds no points; write one 'x y z' line per point")
    first, delimiter = data[0], _delimiter(lines[data[0]])
    skip = first
    if not all(_NUMBER.match(t) for t in _tokens(lines[first], delimiter)) or len(_tokens(lines[first], delimiter)) == 1:
        skip = first + 1  # a header ("x y z") or a point count (.pts)
    rows = np.loadtxt(io.StringIO(text), dtype=np.float64, delimiter=delimiter, comments=("#", "//"),
                      skiprows=skip, usecols=(0, 1, 2), ndmin=2)
    return finish_cloud(rows, {"format": "text", "delimiter": delimiter or "whitespace"}, limits)


def _delimiter(line: str) -> str | None:
    for candidate in (",", ";", "\t"):
        if candidate in line:
            return candidate
    return None


def _tokens(line: str, delimiter: str | None) -> list[str]:
    return [t.strip() for t in line.split(delimiter) if t.strip()]


def read_npy(path: Path, limits: Limits) -> Loaded:
    """A NumPy array: (N, 3+) points, (H, W, 3+) organised grid, or a structured array with x, y, z."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.dtype.names:
        if not {"x", "y", "z"} <= set(array.dtype.names) or array.ndim != 1:
            raise InputError(f"the .npy structured array needs x, y, z fields (found {array.dtype.names})")
        refuse_over("the number of points", len(array), limits.max_points, _TOO_MANY)
        points = np.stack([np.asarray(array[a], np.float64) for a in "xyz"], axis=1)
        return finish_cloud(points, {"format": "npy"}, limits)
    if array.dtype.kind not in "fiu" or array.ndim not in (2, 3) or array.shape[-1] < 3:
        raise InputError(f"the .npy array has shape {array.shape} and type {array.dtype}; "
                         "save points as a float (N, 3) or (H, W, 3) array")
    refuse_over("the number of points", int(np.prod(array.shape[:-1])), limits.max_points, _TOO_MANY)
    values = np.asarray(array[..., :3], dtype=np.float64)
    if values.ndim == 3:
        return finish_grid(values, {"format": "npy", "organised": list(values.shape[:2])}, limits)
    return finish_cloud(values, {"format": "npy"}, limits)


def is_organised_tiff(shape: tuple, dtype: np.dtype) -> bool:
    """Whether a TIFF page header describes an MVTec 3D-AD style xyz grid rather than a picture."""
    return len(shape) == 3 and shape[2] == 3 and np.dtype(dtype).kind == "f"


def read_organised_tiff(path: Path, limits: Limits) -> Loaded:
    """MVTec 3D-AD xyz TIFF: H x W x 3 float32, all-zero cells are cells without a point."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        height, width = page.shape[:2]
        refuse_over("the number of grid cells", height * width, limits.max_points, _TOO_MANY)
        grid = np.asarray(page.asarray(), dtype=np.float64)
    if grid.shape != (height, width, 3):
        raise InputError(f"the TIFF point grid has shape {grid.shape}, expected {height} x {width} x 3")
    return finish_grid(grid, {"format": "tiff", "organised": [height, width]}, limits)


def finish_grid(grid: np.ndarray, meta: dict, limits: Limits) -> Loaded:
    """An organised H x W x 3 grid: cells that are all zero or not finite hold no point."""
    with np.errstate(over="ignore", invalid="ignore"):
        grid32 = grid.astype(np.float32)
    valid = np.isfinite(grid32).all(axis=2) & (grid32 != 0).any(axis=2)
    loaded = finish_cloud(grid32[valid], meta, limits)
    loaded.extra["grid"] = np.where(valid[:, :, None], grid32, np.float32(0))
    loaded.extra["valid"] = valid
    loaded.meta["empty_cells"] = int(valid.size - valid.sum())
    return loaded


def finish_cloud(points: np.ndarray, meta: dict, limits: Limits, colours: np.ndarray | None = None) -> Loaded:
    """float32 points without NaN/inf rows; refuses clouds that are empty, tiny or a single spot.

    colours (uint8 (N, 3), one per point) are kept in extra["colours"] for the points that are kept.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        points = np.asarray(points, dtype=np.float64).astype(np.float32)
    finite = np.isfinite(points).all(axis=1)
    kept = np.ascontiguousarray(points[finite])
    if len(kept) < limits.min_points:
        found = f"{len(kept)} usable point{'s' if len(kept) != 1 else ''}"
        dropped = f" ({int((~finite).sum()):,} with NaN or infinite coordinates dropped)" if (~finite).any() else ""
        raise InputError(f"the point cloud has {found}{dropped}; at least {limits.min_points} are needed, "
                         "check that the export wrote the points")
    low, high = kept.min(axis=0), kept.max(axis=0)
    if not (high > low).any():
        raise InputError("all points of the cloud are at the same place; check the export (units, scale)")
    meta.update({"points": int(len(kept)), "dropped_points": int((~finite).sum()),
                 "bounds": [low.tolist(), high.tolist()], "colour": colours is not None})
    extra = {} if colours is None else {"colours": np.ascontiguousarray(colours[finite])}
    return Loaded("point_cloud", kept, meta, extra)
