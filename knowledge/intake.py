"""Checking and describing reference files before anything is stored.

Every file of an import is read and described first; only when all are acceptable does the store
write anything, so a bad file in a folder leaves the knowledge base as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from knowledge.files import safe_suffix, sha256_of
from tools.errors import InputError
from tools.experts.descriptor import image_descriptor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class PreparedFile:
    """A file ready to store: where it is, its content hash, suffix and image descriptor."""

    source: Path
    sha256: str
    suffix: str
    size: int
    descriptor: np.ndarray


def prepare(file, view_image: Image.Image | None = None) -> PreparedFile:
    """Check a reference file and compute its descriptor (from view_image when given)."""
    source = Path(file)
    if not source.is_file():
        raise InputError(f"{source} is not a file; give the path of a normal sample")
    if view_image is not None and not isinstance(view_image, Image.Image):
        raise InputError("view_image must be a PIL image (the rendered view of the file)")
    image = view_image if view_image is not None else read_image(source)
    return PreparedFile(source, sha256_of(source), safe_suffix(source.name), source.stat().st_size,
                        image_descriptor(image))


def read_image(path: Path) -> Image.Image:
    """The image in a file, fully decoded; InputError when it is not a readable image."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        raise InputError(f"{path} is not a readable image; give an image file (PNG, JPEG, ...), or for a point "
                         "cloud, series or video pass its rendered view as view_image") from None


def files_to_import(directory, view_for: Callable | None) -> list[Path]:
    """The files of a folder to import: images, or every visible file when a view function is given."""
    folder = Path(directory)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give the folder that holds the normal samples")
    chosen = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                    and (view_for is not None or p.suffix.lower() in IMAGE_SUFFIXES))
    if not chosen:
        raise InputError(f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES)}); nothing to import")
    return chosen


def prepare_all(paths: list[Path], view_for: Callable | None) -> list[PreparedFile]:
    """Prepare every file, naming the first one that is not acceptable."""
    prepared = []
    for path in paths:
        view = view_for(path) if view_for is not None else None
        prepared.append(prepare(path, view))
    return prepared
