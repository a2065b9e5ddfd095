"""On-disk cache of fitted reference models, keyed by the reference scans' content and the method version.

Fitting aligns every reference and calibrates leave-one-out, which takes seconds; the result is
one .npz file (the reference surface, the thresholds and the references' own variation) named by a hash of the scans' sha256
values in order and of the method version, so a changed reference or method gives a new key.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from tools.experts.cloud.deviation import Surface

FOLDER = "cloud_expert"


def key(scan_keys: list[str], version: int) -> str:
    """The cache key of a reference set (its scans' content hashes, in order) under a method version."""
    text = json.dumps({"scans": list(scan_keys), "version": version})
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def save(cache_dir: str | os.PathLike, name: str, model) -> Path:
    """Write a fitted model atomically (a concurrent reader never sees half a file)."""
    folder = Path(cache_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    surface = model.surface
    meta = {"size": model.size, "normal_scores": model.normal_scores,
            "alignments": model.alignments, "count": model.count, "spacing": surface.spacing}
    extra = {} if model.variation is None else {"variation": model.variation.astype(np.float32)}
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), points=surface.points, normals=surface.normals,
                 owner=surface.owner, thresholds=model.thresholds, **extra)
    target = folder / f"{name}.npz"
    os.replace(handle.name, target)
    return target


def load(cache_dir: str | os.PathLike, name: str):
    """A cached ReferenceModel, or None when there is none (or it is unreadable)."""
    from tools.experts.cloud.model import ReferenceModel

    path = Path(cache_dir) / FOLDER / f"{name}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            surface = Surface(data["points"], data["normals"], data["owner"], float(meta["spacing"]))
            thresholds = data["thresholds"]
            variation = data["variation"] if "variation" in data.files else None  # older files: unknown
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache file is rebuilt, not fatal
    return ReferenceModel(surface, float(meta["size"]), thresholds, meta["normal_scores"],
                          meta["alignments"], int(meta["count"]), variation)
