"""Features of each reference image, cached by content: in memory and on disk.

A reference is encoded once per feature extractor and working size; choosing the k nearest
references for a query then only gathers cached features. An entry holds named arrays (the
reference's grid, its turned copies, its calibration stand-ins) and is keyed by a hash of the
image's pixels, the extractor's configuration and the working size, so a changed reference (or a
changed method) gets a new key and a stale entry is never used. Arrays are kept as float16 (half
the memory; the features are averages of bounded activations, and matching converts back to
float32). Disk writes are atomic, so a concurrent reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

MEMORY_LIMIT = 384 * 2**20  # bytes of cached features kept in memory (least recently used dropped first)
_memory: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
_sizes: dict[str, int] = {}
_lock = threading.Lock()
_computing: dict[str, threading.Lock] = {}  # key -> held while one thread computes it


def image_hash(image: Image.Image) -> str:
    """sha256 of an image's mode, size and pixels (file format and metadata do not matter)."""
    digest = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def entry_key(image_sha: str, extractor_id: str, size: tuple[int, int], what: str) -> str:
    """The key of one cached entry: image content, extractor configuration, working size, content kind."""
    return f"{image_sha[:32]}-{extractor_id}-{size[0]}x{size[1]}-{what}"


def cached(key: str, compute: Callable[[], dict[str, np.ndarray]], cache_dir=None) -> dict[str, np.ndarray]:
    """The arrays stored under `key`: from memory, else from disk, else computed and stored in both.
    Threads asking for the same key at once compute it once: the others wait for it (the app's
    warm-up and a first inspection, or two evaluation workers, often need the same reference)."""
    found = _from_memory(key)
    if found is not None:
        return found
    with _lock:
        gate = _computing.setdefault(key, threading.Lock())
    with gate:
        try:
            found = _from_memory(key)  # computed by the thread this one waited for
            if found is None:
                found = _read(cache_dir, key) if cache_dir else None
                if found is None:
                    found = {name: np.asarray(value, np.float16) if value.dtype.kind == "f" else value
                             for name, value in compute().items()}
                    if cache_dir:
                        _write(cache_dir, key, found)
                _remember(key, found)
            return found
        finally:
            with _lock:
                if _computing.get(key) is gate:
                    del _computing[key]


def _from_memory(key: str) -> dict[str, np.ndarray] | None:
    with _lock:
        if key in _memory:
            _memory.move_to_end(key)
            return _memory[key]
    return None


def in_memory(key: str) -> bool:
    """True when the entry is held in memory (for tests and benchmarks)."""
    with _lock:
        return key in _memory


def clear_memory() -> None:
    """Forget every entry held in memory (the disk cache stays)."""
    with _lock:
        _memory.clear()
        _sizes.clear()


def _remember(key: str, arrays: dict[str, np.ndarray]) -> None:
    with _lock:
        _memory[key] = arrays
        _memory.move_to_end(key)
        _sizes[key] = sum(a.nbytes for a in arrays.values())
        while len(_memory) > 1 and sum(_sizes.values()) > MEMORY_LIMIT:
            oldest, _ = _memory.popitem(last=False)
            _sizes.pop(oldest, None)


def _path(cache_dir, key: str) -> Path:
    return Path(cache_dir) / "features" / f"{key}.npz"


def _read(cache_dir, key: str) -> dict[str, np.ndarray] | None:
    path = _path(cache_dir, key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError, EOFError):
        return None  # a damaged cache file is recomputed, not fatal


def _write(cache_dir, key: str, arrays: dict[str, np.ndarray]) -> None:
    path = _path(cache_dir, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            np.savez(handle, **arrays)
        os.replace(handle.name, path)
    except OSError:
        pass  # a full or read-only disk costs speed next time, never the analysis
