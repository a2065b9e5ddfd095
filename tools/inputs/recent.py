"""Images decoded recently, kept by the file's content, so that the same file read again is not decoded again.

An evaluation gives each item its k nearest training normals as references, and each analysis
loads them from their files again (a 900-pixel PNG takes 15 to 25 ms to decode, against about
2 ms to hash the file, which loading does anyway): in a run of 208 analyses with four references,
four of every five loads were such repeats. The key is the SHA-256 of the file's bytes with what
else the result depends on (format, extension, limits), so a changed file is never answered from
here. Only images are kept, at most MAX_BYTES of pixels, the least recently used dropped first; a
hit gives a copy of the picture (callers may change theirs: `thumbnail()` works in place) and of its meta.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

MAX_BYTES = 48 * 2**20
_kept: OrderedDict[tuple, tuple] = OrderedDict()  # key -> (kind, meta, picture, extra)
_lock = threading.Lock()


def get(key: tuple):
    """(kind, meta, picture, extra) of a kept image, copies of the mutable parts; None if not kept."""
    with _lock:
        found = _kept.get(key)
        if found is None:
            return None
        _kept.move_to_end(key)
    kind, meta, picture, extra = found
    return kind, dict(meta), picture.copy(), dict(extra)


def put(key: tuple, kind: str, meta: dict, picture, extra: dict) -> None:
    """Keep a decoded image (a copy: the caller's may change)."""
    if kind != "image":
        return
    entry = (kind, dict(meta), picture.copy(), dict(extra))
    with _lock:
        _kept[key] = entry
        _kept.move_to_end(key)
        while len(_kept) > 1 and sum(_size(entry[2]) for entry in _kept.values()) > MAX_BYTES:
            _kept.popitem(last=False)


def clear() -> None:
    """Forget every kept image."""
    with _lock:
        _kept.clear()


def _size(picture) -> int:
    return picture.width * picture.height * len(picture.getbands())
