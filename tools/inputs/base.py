"""What every loader shares: the size limits, the result a loader returns, and small checks.

Each loader reads one family of formats (image, point cloud, series, video) and returns a `Loaded`;
tools/inputs/artifacts.py picks the loader from the file's content and extension and wraps the result
in an `Artifact`. Loaders raise `InputError` for anything wrong with the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.errors import InputError


@dataclass(frozen=True)
class Limits:
    """The largest input accepted; checked from the file size and headers before decoding."""

    max_bytes: int = 512 * 2**20  # the app's default upload limit (Settings.max_upload_mb)
    max_pixels: int = 64_000_000  # per image or video frame (Settings.max_image_pixels)
    max_points: int = 20_000_000  # points in a cloud, counting empty cells of an organised grid
    max_rows: int = 5_000_000  # rows of a series
    max_columns: int = 200  # columns of a series
    max_frames: int = 20_000  # frames a video may have (decoding is sequential)
    keep_frames: int = 96  # frames kept in memory from a video, spread evenly over it
    frame_long_side: int = 512  # kept video frames are scaled down to this long side
    min_points: int = 3  # fewer cannot be rendered (no surface, no extent)


@dataclass
class Loaded:
    """A loader's result: the payload plus what tools/inputs/artifacts.py records beside it."""

    kind: str
    payload: Any
    meta: dict = field(default_factory=dict)  # small and JSON-serialisable
    extra: dict = field(default_factory=dict)  # large or non-JSON companions (grids, labels)


def refuse_over(what: str, count: int, limit: int, advice: str) -> None:
    """Raise an InputError when a count from a header is over its limit."""
    if count > limit:
        raise InputError(f"{what} is {count:,}, over the limit of {limit:,}; {advice}")


def one_line(exc: BaseException, max_len: int = 160) -> str:
    """An exception as a short single line, for wrapping a library's error in ours."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= max_len else text[: max_len - 3] + "..."
