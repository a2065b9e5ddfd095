"""Stand-ins for the calibration, made from a reference normal alone.

- `jittered_copies`: the same part photographed again (shift, a small turn, other lighting);
  what a new normal photograph of the same part would look like.
- `stand_in_defects`: the reference with a synthetic flaw where the part is: a square cut from
  elsewhere in the same image and pasted turned (CutPaste, Li et al. 2021), or a soft blotch of
  changed brightness and colour. They stand in for the defects nobody has shown the expert yet.
  They are deliberately not the defects the tests and benchmarks paste (tests/helpers/defects.py:
  scratch, spot, missing piece, colour cast), so the benchmark does not grade the calibration on
  the very flaws it was calibrated with.
Every copy is seeded by the reference's content hash: the same reference always gives the same
copies, so their features can be cached with the reference's own (tools/experts/vision/cache.py).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

DEFECT_SIZE = (0.05, 0.09)
WINDOW = 0.94  # side of the window a fixed-pose jittered copy is cut from; its place moves by +-1 %  # side of a stand-in flaw, as a share of the image's short side


def border_colour(image: Image.Image) -> tuple[int, ...]:
    """Median colour of the top and bottom rows: the fill for rotated or shifted copies."""
    rows = np.asarray(image)[[0, -1]].reshape(-1, 3)
    return tuple(int(v) for v in np.median(rows, axis=0))


def jittered_copies(image: Image.Image, count: int, seed: int, free_rotation: bool) -> list[Image.Image]:
    """Copies of a normal image with the pose and lighting changes a new photograph would have.

    A fixed-pose copy is turned by up to 1.5 degrees and cut from a window of 94 % of the side at
    a random place, then brought back to full size, so it has no filled border (a filled strip
    would look like a flaw and raise the normal level); a copy at any angle is turned freely,
    with the corners in the border colour, as the turned references have them."""
    rng = np.random.default_rng(seed)
    copies = []
    for _ in range(count):
        if free_rotation:
            moved = image.rotate(rng.uniform(0, 360), resample=Image.BILINEAR, fillcolor=border_colour(image))
        else:
            turned = image.rotate(rng.uniform(-1.5, 1.5), resample=Image.BILINEAR)
            w, h = image.size
            x, y = rng.uniform(0.02, 0.04, 2) * (w, h)  # inside the corners the turn left empty
            moved = turned.crop((x, y, x + WINDOW * w, y + WINDOW * h)).resize(image.size, Image.BILINEAR)
        moved = ImageEnhance.Brightness(moved).enhance(rng.uniform(0.94, 1.06))
        moved = ImageEnhance.Contrast(moved).enhance(rng.uniform(0.95, 1.05))
        noisy = np.asarray(moved, np.float32) + rng.normal(0, 1.5, (moved.height, moved.width, 1))
        copies.append(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)))
    return copies


def part_mask(image: Image.Image) -> np.ndarray:
    """Pixels that differ clearly from the border colour: where the part is."""
    pixels = np.asarray(image, np.float32)
    return np.abs(pixels - np.asarray(border_colour(image), np.float32)).sum(axis=-1) > 60


def stand_in_defects(image: Image.Image, count: int, seed: int) -> list[tuple[Image.Image, tuple[int, int, int, int]]]:
    """`count` copies of the image with one synthetic flaw each, and each flaw's pixel box (x0, y0, x1, y1)."""
    rng = np.random.default_rng(seed)
    kinds = (_cut_paste, _blotch)
    return [kinds[i % len(kinds)](image, rng) for i in range(count)]


def _place(image: Image.Image, rng: np.random.Generator, side: int) -> tuple[int, int]:
    """Top-left corner of a flaw on the part (in the central area when no part stands out)."""
    w, h = image.size
    inner = np.zeros((h, w), bool)
    inner[int(0.15 * h):int(0.85 * h - side), int(0.15 * w):int(0.85 * w - side)] = True
    candidates = part_mask(image) & inner
    ys, xs = np.nonzero(candidates if candidates.sum() > 50 else inner)
    if not len(xs):
        return (w - side) // 2, (h - side) // 2
    pick = rng.integers(len(xs))
    return int(xs[pick]), int(ys[pick])


def _side(image: Image.Image, rng: np.random.Generator) -> int:
    return max(4, int(min(image.size) * rng.uniform(*DEFECT_SIZE)))


def _cut_paste(image: Image.Image, rng: np.random.Generator):
    """A square from elsewhere in the image, turned by 90 degrees, pasted onto the part."""
    side = _side(image, rng)
    x, y = _place(image, rng, side)
    sx = int(rng.integers(0, image.width - side))
    sy = int(rng.integers(0, image.height - side))
    piece = image.crop((sx, sy, sx + side, sy + side)).transpose(Image.Transpose.ROTATE_90)
    copy = image.copy()
    copy.paste(piece, (x, y))
    return copy, (x, y, x + side, y + side)


def _blotch(image: Image.Image, rng: np.random.Generator):
    """A soft elliptical area of changed brightness and colour."""
    side = _side(image, rng)
    x, y = _place(image, rng, side)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse((x, y, x + side, y + side * rng.uniform(0.6, 1.0)), fill=255)
    alpha = np.asarray(mask.filter(ImageFilter.GaussianBlur(side / 8)), np.float32)[..., None] / 255
    gains = rng.choice([0.55, 1.45]) * rng.uniform(0.85, 1.15, 3)
    pixels = np.asarray(image, np.float32)
    changed = pixels * (1 - alpha) + np.clip(pixels * gains + rng.choice([-25, 25]), 0, 255) * alpha
    return Image.fromarray(changed.astype(np.uint8)), (x, y, x + side, y + side)
