"""Synthetic parts and defects for testing and measuring the vision expert.

`textured_part` draws a part from numpy alone; `jitter` gives a normal image the small pose and
lighting changes of a new photograph; `add_defect` pastes a scratch, a spot, a missing piece or
a colour change onto an image (a real photograph too) and returns the defect's mask.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

DEFECT_KINDS = ("scratch", "spot", "missing", "colour")


def textured_part(size: int = 320, seed: int = 0) -> Image.Image:
    """A grey part with a grainy surface, holes and a stripe, on a dark textured background."""
    rng = np.random.default_rng(seed)
    base = np.full((size, size, 3), (40, 45, 50), np.float32)
    base += rng.normal(0, 6, (size, size, 1))
    yy, xx = np.mgrid[0:size, 0:size] / size
    part = ((xx - 0.5) ** 2 / 0.16 + (yy - 0.5) ** 2 / 0.12) < 1
    grain = np.sin(xx * 90) * np.cos(yy * 70) * 12 + rng.normal(0, 5, (size, size))
    base[part] = np.array([170, 165, 150]) + grain[part, None]
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for cx, cy in ((0.3, 0.4), (0.7, 0.4), (0.5, 0.65)):
        r = 0.05 * size
        draw.ellipse((cx * size - r, cy * size - r, cx * size + r, cy * size + r), fill=(60, 60, 70))
    draw.rectangle((0.35 * size, 0.2 * size, 0.65 * size, 0.25 * size), fill=(110, 120, 150))
    return image


def jitter(image: Image.Image, seed: int, shift: float = 0.01, angle: float = 1.5,
           light: float = 0.05) -> Image.Image:
    """The same scene photographed again: small shift and rotation, other lighting, new noise."""
    rng = np.random.default_rng(seed)
    pad = int(0.06 * max(image.size))  # mirrored margin, so the moved image has no empty corners
    padded = Image.fromarray(np.pad(np.asarray(image), ((pad, pad), (pad, pad), (0, 0)), mode="reflect"))
    offset = tuple(rng.uniform(-shift, shift, 2) * np.array(image.size))
    moved = padded.rotate(rng.uniform(-angle, angle), Image.BILINEAR, translate=offset)
    moved = moved.crop((pad, pad, pad + image.width, pad + image.height))
    moved = ImageEnhance.Brightness(moved).enhance(1 + rng.uniform(-light, light))
    noisy = np.asarray(moved, np.float32) + rng.normal(0, 2.0, (moved.height, moved.width, 1))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def foreground(image: Image.Image) -> np.ndarray:
    """Boolean mask of pixels that differ clearly from the border colour (the part itself)."""
    pixels = np.asarray(image, np.float32)
    border = np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]), axis=0)
    return np.abs(pixels - border).sum(axis=-1) > 60


def add_defect(image: Image.Image, kind: str, seed: int, scale: float = 1.0) -> tuple[Image.Image, np.ndarray]:
    """The image with one defect of `kind` pasted on the part, and the defect's boolean mask."""
    rng = np.random.default_rng(seed)
    w, h = image.size
    centre = _spot_on_part(image, rng)
    radius = scale * min(w, h) * rng.uniform(0.025, 0.045)
    mask_image = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(mask_image)
    if kind == "scratch":
        angle, length = rng.uniform(0, np.pi), radius * rng.uniform(3, 5)
        dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
        draw.line((centre[0] - dx, centre[1] - dy, centre[0] + dx, centre[1] + dy), fill=255,
                  width=max(2, int(radius / 5)))
    else:
        squash = rng.uniform(0.6, 1.0)
        draw.ellipse((centre[0] - radius, centre[1] - radius * squash, centre[0] + radius,
                      centre[1] + radius * squash), fill=255)
    painted = _paint(np.asarray(image, np.float32), kind, rng, foreground(image))
    alpha = np.asarray(mask_image.filter(ImageFilter.GaussianBlur(1.0)), np.float32)[..., None] / 255
    result = np.asarray(image, np.float32) * (1 - alpha) + painted * alpha
    return Image.fromarray(np.clip(result, 0, 255).astype(np.uint8)), np.asarray(mask_image) > 127


def _spot_on_part(image: Image.Image, rng: np.random.Generator) -> tuple[float, float]:
    """A random point on the part (or anywhere in the central area if no part stands out)."""
    mask = foreground(image)
    w, h = image.size
    inner = np.zeros_like(mask)
    inner[int(0.15 * h):int(0.85 * h), int(0.15 * w):int(0.85 * w)] = True
    ys, xs = np.nonzero(mask & inner) if (mask & inner).sum() > 100 else np.nonzero(inner)
    pick = rng.integers(len(xs))
    return float(xs[pick]), float(ys[pick])


def _paint(pixels: np.ndarray, kind: str, rng: np.random.Generator, part: np.ndarray) -> np.ndarray:
    """What the defect area looks like: the full image painted with the defect's appearance."""
    if kind == "scratch":  # darker on light surfaces, lighter on dark ones
        light = pixels.mean(axis=-1, keepdims=True) > 110
        return np.where(light, pixels * 0.4, pixels * 0.5 + 130)
    if kind == "spot":
        colour = rng.choice([[70, 45, 25], [30, 30, 30], [200, 190, 120]])
        return np.broadcast_to(np.array(colour, np.float32), pixels.shape) + rng.normal(0, 6, pixels.shape)
    if kind == "missing":
        background = np.median(pixels[~part], axis=0) if (~part).sum() > 100 else np.array([0, 0, 0])
        return np.broadcast_to(background.astype(np.float32), pixels.shape).copy()
    if kind == "colour":
        gains = np.array(rng.choice([[1.25, 0.9, 0.7], [0.75, 0.95, 1.3], [0.8, 1.2, 0.8]]), np.float32)
        return np.clip(pixels * gains, 0, 255)
    raise ValueError(f"unknown defect kind {kind!r}; choose one of {DEFECT_KINDS}")
