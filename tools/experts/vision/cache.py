"""On-disk cache of fitted reference sets, keyed by the references' content and the method.

A fitted reference set (memory bank + calibration) is one .npz file named by a hash of every
reference image's pixels and of every setting that changes the result (method version, feature
extractor and its configuration, working size, matching, rotation). Changing a reference, or
the method, gives a new key, so a stale bank is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image

from tools.experts.vision.matching import MemoryBank


@dataclass
class FittedReferences:
    """Everything `score` needs about one reference set."""

    bank: MemoryBank
    size: tuple[int, int]  # working (width, height) every image is resized to
    matching: str  # "position" or "free"
    threshold: float
    normal_scores: dict = field(default_factory=dict)  # "leave_one_out", "jittered": raw scores
    from_cache: bool = False


def image_hash(image: Image.Image) -> str:
    """sha256 of an image's mode, size and pixels (file format and metadata do not matter)."""
    digest = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def cache_key(references: list[Image.Image], settings: dict) -> str:
    """The cache key of a reference set under the given method settings."""
    text = json.dumps({"references": [image_hash(r) for r in references], "settings": settings},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def save(cache_dir: str | os.PathLike, key: str, fitted: FittedReferences) -> Path:
    """Write a fitted reference set atomically (a concurrent reader never sees half a file)."""
    folder = Path(cache_dir) / "expert"
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"size": list(fitted.size), "matching": fitted.matching, "threshold": fitted.threshold,
            "normal_scores": fitted.normal_scores}
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as handle:
        arrays = {f.name: getattr(fitted.bank, f.name) for f in fields(MemoryBank)}
        np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)
    target = folder / f"{key}.npz"
    os.replace(handle.name, target)
    return target


def load(cache_dir: str | os.PathLike, key: str) -> FittedReferences | None:
    """A cached fitted reference set, or None when there is none (or it is unreadable)."""
    path = Path(cache_dir) / "expert" / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            bank = MemoryBank(**{f.name: data[f.name] for f in fields(MemoryBank)})
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache file is rebuilt, not fatal
    return FittedReferences(bank, tuple(meta["size"]), meta["matching"], float(meta["threshold"]),
                            meta["normal_scores"], from_cache=True)
