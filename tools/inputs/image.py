"""Images (PNG, JPEG, BMP, TIFF; 8/16-bit, grayscale, alpha, EXIF orientation) -> PIL RGB."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from tools.errors import InputError
from tools.inputs.base import Limits, Loaded

_DIRECT_TO_RGB = {"RGB", "L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV"}
_WITH_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}


def read_image(path: Path, limits: Limits) -> Loaded:
    """Decode an image file with Pillow after checking its header dimensions."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as img:
                check_pixels(img.width, img.height, limits)
                img.load()
                return loaded_image(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(f"the image is too large to decode safely ({exc}); scale it down and upload again") from exc


def check_pixels(width: int, height: int, limits: Limits) -> None:
    """Refuse empty images and images with more pixels than the limit (read from the header)."""
    if width <= 0 or height <= 0:
        raise InputError(f"the image has no pixels ({width}x{height}); export it again")
    if width * height > limits.max_pixels:
        raise InputError(
            f"the image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limits.max_pixels:,}; scale it down or crop it and upload again"
        )


def loaded_image(img: Image.Image) -> Loaded:
    """An opened, decoded Pillow image as a Loaded RGB image with its meta."""
    source_mode, frames, orientation = img.mode, getattr(img, "n_frames", 1), _orientation(img)
    rgb = to_rgb(ImageOps.exif_transpose(img))
    meta = {"width": rgb.width, "height": rgb.height, "mode": source_mode, "format": img.format or ""}
    if orientation not in (None, 1):
        meta["exif_orientation"] = orientation  # applied: the payload is upright
    if frames > 1:
        meta["pages"] = frames
        meta["note"] = f"the file holds {frames} pages; the first is used"
    return Loaded("image", rgb, meta)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB: alpha flattened on white, 16-bit and float data rescaled."""
    if img.mode in _WITH_ALPHA or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in _DIRECT_TO_RGB:
        return img.convert("RGB")
    return array_to_rgb(np.asarray(img))


def array_to_rgb(array: np.ndarray) -> Image.Image:
    """An integer or float array (H x W, or H x W x channels) as an 8-bit RGB image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"image data of shape {array.shape} is not grayscale or RGB; export it as an 8-bit PNG")
    scaled = to_uint8(array[:, :, :3] if array.ndim == 3 else array)
    return Image.fromarray(scaled).convert("RGB")


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Rescale to 0..255: integers by their bit depth (so 12-bit data is not dark), floats by range."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind in "ui":
        top = float(array.max(initial=0))
        bits = min(max(8, int(np.ceil(np.log2(top + 1)))), array.dtype.itemsize * 8)
        bits += bits % 2  # sensors store 10, 12, 14 or 16 bits
        return (np.clip(array, 0, None) * (255.0 / (2**bits - 1))).round().clip(0, 255).astype(np.uint8)
    values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return ((values - low) * (255.0 / (high - low))).round().astype(np.uint8)


def _orientation(img: Image.Image) -> int | None:
    try:
        return img.getexif().get(0x0112)
    except (ValueError, OSError, SyntaxError, KeyError, TypeError):
        return None


def read_tiff(path: Path, limits: Limits) -> Loaded:
    """A TIFF: an organised xyz point grid (float, 3 samples) or a picture (any bit depth)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        shape, dtype, width, height = page.shape, page.dtype, page.imagewidth, page.imagelength
    from tools.inputs.cloud import is_organised_tiff, read_organised_tiff

    if dtype is not None and is_organised_tiff(shape, dtype):
        return read_organised_tiff(path, limits)
    check_pixels(int(width), int(height), limits)
    try:
        return read_image(path, limits)
    except (Image.UnidentifiedImageError, OSError, ValueError):
        return _read_tiff_with_tifffile(path)  # float, multi-sample and other data Pillow cannot decode


def _read_tiff_with_tifffile(path: Path) -> Loaded:
    import tifffile

    array = tifffile.imread(path, key=0)
    rgb = array_to_rgb(np.asarray(array))
    return Loaded("image", rgb, {"width": rgb.width, "height": rgb.height, "mode": str(array.dtype), "format": "TIFF"})
