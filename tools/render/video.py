"""Video -> one image: up to 16 frames in a grid, each tile labelled with its time.

Frames are chosen evenly over the video, or at scene changes (the frames that differ most from
the frame before them, recorded by the loader), so that a single odd frame is shown.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from tools.render.imageops import font

MAX_TILES = 16
MODES = ("auto", "even", "scenes")


def choose_frames(times: list[float], changes: list[float] | None, count: int = 8, mode: str = "auto") -> list[int]:
    """Positions (into the frame list) to show, in time order.

    even: spread evenly. scenes: the first frame plus the changes that stand out (the largest ones
    when none does), the rest spread out between them. auto: scenes when a change stands out.
    """
    if mode not in MODES:
        raise ValueError(f"unknown frame choice {mode!r}; use one of {', '.join(MODES)}")
    total, count = len(times), max(1, min(count, MAX_TILES, len(times)))
    standout = _scene_changes(changes or [])
    if mode == "even" or not changes or (mode == "auto" and not standout):
        return sorted(set(np.linspace(0, total - 1, count).round().astype(int).tolist()))
    ranked = standout or [int(i) for i in np.argsort(changes)[::-1] if changes[i] > 0]
    picked = {0, *ranked[: count - 1]}
    while len(picked) < count:  # fill the largest gaps: the frame farthest from every chosen one
        distance = np.min(np.abs(np.arange(total)[:, None] - np.array(sorted(picked))[None, :]), axis=1)
        picked.add(int(np.argmax(distance)))
    return sorted(picked)


def _scene_changes(changes: list[float]) -> list[int]:
    """Positions whose change from the previous frame stands out, largest first."""
    values = np.asarray(changes, dtype=np.float64)
    if len(values) < 4:
        return []
    typical = np.median(values[1:])
    spread = np.median(np.abs(values[1:] - typical)) * 1.4826
    cutoff = typical + max(6 * spread, 0.02)
    return [int(i) for i in np.argsort(values)[::-1] if values[i] > cutoff]


def tile_boxes(count: int, frame_size: tuple[int, int], *, tile_width: int = 320, columns: int | None = None,
               header: int = 0) -> tuple[tuple[int, int], list[tuple[int, int, int, int]]]:
    """The grid's size and each tile's pixel box (x0, y0, x1, y1), in time order (left to right, rows)."""
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    tile_height = max(1, round(tile_width * frame_size[1] / frame_size[0]))
    size = (columns * tile_width + (columns + 1) * 4, header + rows * tile_height + (rows + 1) * 4)
    boxes = []
    for i in range(count):
        x = 4 + (i % columns) * (tile_width + 4)
        y = header + 4 + (i // columns) * (tile_height + 4)
        boxes.append((x, y, x + tile_width, y + tile_height))
    return size, boxes


def frame_grid(frames: list[tuple[float, Image.Image]], *, tile_width: int = 320, columns: int | None = None,
               title: str | None = None) -> Image.Image:
    """Tiles in rows (time order, left to right), each with its time in seconds."""
    if not frames:
        raise ValueError("no frames to show")
    size, boxes = tile_boxes(len(frames), frames[0][1].size, tile_width=tile_width, columns=columns,
                             header=30 if title else 0)
    sheet = Image.new("RGB", size, (30, 30, 34))
    draw, label_font = ImageDraw.Draw(sheet), font(max(13, tile_width // 18))
    if title:
        draw.text((8, 6), title, fill=(235, 235, 235), font=font(16))
    for i, ((seconds, image), (x, y, x1, y1)) in enumerate(zip(frames, boxes, strict=True)):
        sheet.paste(image.convert("RGB").resize((x1 - x, y1 - y), Image.Resampling.BILINEAR), (x, y))
        draw.text((x + 6, y + 4), f"{i + 1}  t={seconds:.2f} s", fill=(255, 255, 255), font=label_font,
                  stroke_width=2, stroke_fill=(0, 0, 0))
    return sheet


def render_frames(frames: list[tuple[float, Image.Image]], changes: list[float] | None = None, *, count: int = 8,
                  mode: str = "auto", tile_width: int = 320) -> Image.Image:
    """The chosen frames of a video as one labelled grid."""
    return frame_grid(shown_frames(frames, changes, count, mode), tile_width=tile_width)


def shown_frames(frames: list[tuple[float, Image.Image]], changes: list[float] | None = None, count: int = 8,
                 mode: str = "auto") -> list[tuple[float, Image.Image]]:
    """(time, frame) of the frames the grid shows, in its order."""
    return [frames[i] for i in choose_frames([t for t, _ in frames], changes, count, mode)]
