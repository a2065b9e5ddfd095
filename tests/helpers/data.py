"""Synthetic test data for every modality, with and without defects, and writers for each format.

Images: a round part on a background, optionally scratched or spotted. Point clouds: a sensor-like
scan (sensor at the origin looking along +z) of a dome-shaped part on a background plane, with a
bump or a dent, organised (H x W x 3, zeros = no point) or as plain points. Series: a daily-like
cycle with noise, spikes and level shifts, with timestamps and a label column. Videos: a part moving
across the frame, with one odd frame. Every generator is seeded and deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

DEFECT_AT = (0.62, 0.38)  # where defects are placed, as (x, y) fractions of the part's extent


# ---------------------------------------------------------------- images
def part_image(size: tuple[int, int] = (256, 256), *, defect: str | None = None, seed: int = 0) -> Image.Image:
    """A light round part with a hole on a darker, slightly noisy background; defect: scratch | spot."""
    rng = np.random.default_rng(seed)
    width, height = size
    background = 60 + rng.normal(0, 4, (height, width)) + np.linspace(0, 20, width)[None, :]
    img = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(img)
    cx, cy, r = width / 2, height / 2, 0.36 * min(size)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(196, 188, 170), outline=(150, 144, 130), width=3)
    draw.ellipse((cx - r / 3, cy - r / 3, cx + r / 3, cy + r / 3), fill=(40, 40, 44))
    dx, dy = cx - r + 2 * r * DEFECT_AT[0], cy - r + 2 * r * DEFECT_AT[1]
    if defect == "scratch":
        draw.line((dx - r / 4, dy - r / 8, dx + r / 4, dy + r / 8), fill=(70, 60, 50), width=max(2, width // 100))
    elif defect == "spot":
        s = r / 8
        draw.ellipse((dx - s, dy - s, dx + s, dy + s), fill=(110, 70, 40))
    elif defect is not None:
        raise ValueError(f"unknown image defect {defect!r}")
    return img


def write_image(img: Image.Image, path: str | Path, **save_options) -> Path:
    """Save an image; the format follows the suffix (png, jpg, bmp, tif)."""
    path = Path(path)
    img.save(path, **save_options)
    return path


# ---------------------------------------------------------------- point clouds
def surface_grid(height: int = 96, width: int = 96, *, defect: str | None = None, amplitude: float = 0.003,
                 background: bool = True, noise: float = 0.0001, seed: int = 0) -> np.ndarray:
    """An organised scan (H x W x 3 float32, metres): a dome on a plane, seen from a sensor at the origin.

    defect: "bump" or "dent" (a Gaussian of `amplitude` metres at DEFECT_AT) or None. Cells
    without a point are all zero, as in MVTec 3D-AD: the corners (outside the sensor's field), and
    the background plane too when background=False.
    """
    rng = np.random.default_rng(seed)
    u, v = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
    x, y = 0.05 * u, 0.05 * v
    radius = np.hypot(u, v)
    part = 0.012 * np.sqrt(np.clip(1 - (radius / 0.7) ** 2, 0, None))  # a dome 12 mm high, 70 % of the field
    du, dv = 2 * DEFECT_AT[0] * 0.7 - 0.7, 2 * DEFECT_AT[1] * 0.7 - 0.7
    sign = {"bump": 1.0, "dent": -1.0, None: 0.0}[defect]
    part += sign * amplitude * np.exp(-((u - du) ** 2 + (v - dv) ** 2) / (2 * 0.06**2)) * (radius < 0.7)
    z = 0.6 + 0.01 * u - part + rng.normal(0, noise, u.shape)  # closer to the sensor where the part is higher
    grid = np.stack([x * z / 0.6, y * z / 0.6, z], axis=2).astype(np.float32)
    empty = radius > 1.25 if background else radius >= 0.7
    grid[empty] = 0.0
    return grid


def surface_points(n: int = 20_000, *, defect: str | None = None, background: bool = False, seed: int = 0,
                   **grid_options) -> np.ndarray:
    """About n points (float32 (N, 3)) of the same scene as surface_grid, unorganised and shuffled."""
    side = int(np.ceil(np.sqrt(n / (0.9 if background else 0.3)))) + 2  # the fraction of cells with a point, with room
    grid = surface_grid(side, side, defect=defect, background=background, seed=seed, **grid_options)
    points = grid[(grid != 0).any(axis=2)]
    return np.random.default_rng(seed).permutation(points)[:n]


def write_cloud(points: np.ndarray, path: str | Path, *, encoding: str = "binary") -> Path:
    """Write points ((N, 3), or an organised (H, W, 3) grid for .tiff/.npy) in the suffix's format.

    encoding: for .ply "ascii" | "binary" | "binary_big_endian" (the last written by hand, with
    normals, colours and a face element); for .pcd "ascii" | "binary" | "binary_compressed".
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, np.asarray(points, np.float32))
    elif suffix == ".npy":
        np.save(path, np.asarray(points, np.float32))
    elif suffix in (".xyz", ".pts", ".txt"):
        flat = np.asarray(points).reshape(-1, 3)
        header = f"{len(flat)}\n" if suffix == ".pts" else ""
        path.write_text(header + "\n".join(f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in flat) + "\n")
    elif suffix == ".ply" and encoding == "binary_big_endian":
        _write_big_endian_ply(np.asarray(points).reshape(-1, 3), path)
    elif suffix in (".ply", ".pcd"):
        _write_with_open3d(np.asarray(points).reshape(-1, 3), path, encoding)
    else:
        raise ValueError(f"no cloud writer for {suffix}")
    return path


def _write_with_open3d(points: np.ndarray, path: Path, encoding: str) -> None:
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    ok = o3d.io.write_point_cloud(str(path), cloud, write_ascii=encoding == "ascii",
                                  compressed=encoding == "binary_compressed")
    if not ok:
        raise OSError(f"open3d could not write {path}")


def _write_big_endian_ply(points: np.ndarray, path: Path) -> None:
    vertex = np.dtype([("x", ">f4"), ("y", ">f4"), ("z", ">f4"), ("nx", ">f4"), ("ny", ">f4"), ("nz", ">f4"),
                       ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    table = np.zeros(len(points), vertex)
    for i, axis in enumerate("xyz"):
        table[axis] = points[:, i]
    table["nz"], table["red"] = 1.0, 200
    header = ("ply\nformat binary_big_endian 1.0\ncomment written by tests.helpers.data\n"
              f"element vertex {len(points)}\n" + "".join(f"property {t} {n}\n" for n, t in (
                  ("x", "float"), ("y", "float"), ("z", "float"), ("nx", "float"), ("ny", "float"),
                  ("nz", "float"), ("red", "uchar"), ("green", "uchar"), ("blue", "uchar")))
              + "element face 1\nproperty list uchar int vertex_indices\nend_header\n")
    face = np.array([3], ">u1").tobytes() + np.array([0, 1, 2], ">i4").tobytes()
    path.write_bytes(header.encode() + table.tobytes() + face)


# ---------------------------------------------------------------- series
def series_frame(n: int = 1000, *, columns: tuple[str, ...] = ("value",), spikes: tuple[tuple[int, float], ...] = (),
                 level_shift: tuple[int, int, float] | None = None, period: int | None = 96, noise: float = 0.05,
                 start: str = "2024-01-01", freq: str = "15min", label: bool = True, seed: int = 0) -> pd.DataFrame:
    """A frame with a timestamp column, numeric columns and (optionally) a 0/1 label column.

    spikes: (index, height) pairs added to the first column; level_shift: (start, length, delta);
    period: rows per cycle of a sine (None for no cycle). The label marks spikes and the shift.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    cycle = np.sin(2 * np.pi * t / period) if period else np.zeros(n)
    data = {"timestamp": pd.date_range(start, periods=n, freq=freq)}
    labels = np.zeros(n, np.int8)
    for i, name in enumerate(columns):
        data[name] = 10.0 + 3 * i + (1 + 0.5 * i) * cycle + rng.normal(0, noise, n)
    first = data[columns[0]]
    for index, height in spikes:
        first[index] += height
        labels[index] = 1
    if level_shift:
        begin, length, delta = level_shift
        first[begin:begin + length] += delta
        labels[begin:begin + length] = 1
    if label:
        data["label"] = labels
    return pd.DataFrame(data)


def write_series(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame as .csv, .tsv, .parquet or .json (records with ISO timestamps)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".json":
        path.write_text(json.dumps(json.loads(frame.to_json(orient="records", date_format="iso"))))
    else:
        raise ValueError(f"no series writer for {suffix}")
    return path


# ---------------------------------------------------------------- videos
def video_frames(n: int = 24, *, size: tuple[int, int] = (96, 64), odd_frame: int | None = None,
                 seed: int = 0) -> list[np.ndarray]:
    """RGB frames (H x W x 3 uint8) of a part moving left to right; the odd frame shows a red blob."""
    rng = np.random.default_rng(seed)
    width, height = size
    frames = []
    for i in range(n):
        frame = np.full((height, width, 3), 50, np.uint8) + rng.integers(0, 6, (height, width, 3), dtype=np.uint8)
        left = int((width - width // 4) * i / max(1, n - 1))
        frame[height // 3: 2 * height // 3, left: left + width // 4] = (190, 190, 180)
        if i == odd_frame:
            frame[height // 4: 3 * height // 4, width // 3: 2 * width // 3] = (220, 30, 30)
        frames.append(frame)
    return frames


_VIDEO_CODECS = {".mp4": ("libx264", "yuv420p"), ".mov": ("mpeg4", "yuv420p"), ".avi": ("mjpeg", "yuvj420p"),
                 ".mkv": ("libx264", "yuv420p"), ".gif": ("gif", "rgb8")}


def write_video(path: str | Path, frames: list[np.ndarray] | None = None, *, fps: int = 12, **frame_options) -> Path:
    """Encode frames (default: video_frames(**frame_options)) with PyAV; the codec follows the suffix."""
    import av

    path = Path(path)
    frames = frames if frames is not None else video_frames(**frame_options)
    codec, pix_fmt = _VIDEO_CODECS[path.suffix.lower()]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return path
