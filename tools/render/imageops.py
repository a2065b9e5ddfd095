"""Small image operations used around the model: resize, zoom, heatmap overlay, side-by-side panels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tools.errors import InputError


def fit_long_side(img: Image.Image, long_side: int = 768) -> Image.Image:
    """The image scaled (down or up) so that its longer side is long_side pixels, aspect kept."""
    scale = long_side / max(img.size)
    if abs(scale - 1) < 1e-9:
        return img.copy()
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)


def check_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    """A normalised (x0, y0, x1, y1) box with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, or InputError."""
    if len(box) != 4:
        raise InputError(f"a box needs 4 numbers (x0, y0, x1, y1), got {len(box)}")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise InputError(f"box ({x0}, {y0}, {x1}, {y1}) is not inside the image; use fractions "
                         "0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 of the width and height")
    return x0, y0, x1, y1


def zoom(img: Image.Image, box: Sequence[float], long_side: int = 768) -> Image.Image:
    """The region in a normalised (x0, y0, x1, y1) box, cropped and scaled up to long_side."""
    x0, y0, x1, y1 = check_box(box)
    left, top = int(np.floor(x0 * img.width)), int(np.floor(y0 * img.height))
    right, bottom = max(left + 1, int(np.ceil(x1 * img.width))), max(top + 1, int(np.ceil(y1 * img.height)))
    crop = img.crop((left, top, right, bottom))
    scale = long_side / max(crop.size)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    return crop.resize(size, Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)


def overlay_heatmap(img: Image.Image, heatmap: np.ndarray, alpha: float = 0.45, colormap: str = "jet") -> Image.Image:
    """The heatmap (H x W floats in [0, 1], any size) coloured and blended over the image.

    Blending is weighted by the heat itself, so cold regions keep the image as it is.
    """
    heat = np.nan_to_num(np.asarray(heatmap, np.float32), nan=0.0).clip(0, 1)
    if heat.ndim != 2:
        raise InputError(f"a heatmap must be 2-D (H x W), got shape {heat.shape}")
    heat = np.asarray(Image.fromarray(heat).resize(img.size, Image.Resampling.BILINEAR)).clip(0, 1)
    from matplotlib import colormaps

    colours = colormaps[colormap](heat)[:, :, :3] * 255
    weight = (alpha * np.sqrt(heat))[:, :, None]
    base = np.asarray(img.convert("RGB"), np.float32)
    return Image.fromarray((base * (1 - weight) + colours * weight).round().astype(np.uint8))


def composite(panels: Sequence[tuple[str, Image.Image]], *, height: int = 384, gap: int = 8) -> Image.Image:
    """Panels side by side at one height, each with its label above (reference | query | heatmap)."""
    if not panels:
        raise InputError("composite needs at least one panel")
    label_font = font(max(14, height // 20))
    label_height = label_font.size + 12
    scaled = [(label, img.convert("RGB").resize((max(1, round(img.width * height / img.height)), height),
                                                Image.Resampling.LANCZOS)) for label, img in panels]
    width = sum(img.width for _, img in scaled) + gap * (len(scaled) + 1)
    sheet = Image.new("RGB", (width, height + label_height + gap), (255, 255, 255))
    draw, x = ImageDraw.Draw(sheet), gap
    for label, img in scaled:
        draw.text((x + img.width / 2, 6), label, fill=(20, 20, 20), font=label_font, anchor="ma")
        sheet.paste(img, (x, label_height))
        x += img.width + gap
    return sheet


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's built-in scalable font at a pixel size (a bitmap font on very old Pillow)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()
