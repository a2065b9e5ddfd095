"""Choosing K reference normals for a query, from the item's reference pool only (EvalSet).

`first`: the first K of the pool sorted by file name. `nearest`: the K whose image descriptor
(tools.experts.descriptor) is most similar to the query's, computed on the same 2-D view the session shows
the model (tools.render.views, so point clouds are compared as renders). Both are deterministic: equal
similarities (rounded) are broken by file name, then path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from assistant.evaluation.datasets import EvalSet, Item

REF_CHOICES = ("nearest", "first")


def _name_order(path: Path) -> tuple[str, str]:
    return path.name, path.as_posix()


def default_view(cache_dir: Path | None) -> Callable[[Path, str], object]:
    """The 2-D view of a file, as the session renders it for the model."""
    def view(path: Path, class_name: str):
        from tools.inputs.artifacts import load
        from tools.render.views import to_image

        return to_image(load(path), class_name=class_name, cache_dir=cache_dir)
    return view


class ReferencePicker:
    """Picks the references of each item; safe to call from several worker threads."""

    def __init__(self, dataset: EvalSet, shots: int, choice: str = "nearest", view: Callable | None = None):
        if choice not in REF_CHOICES:
            from tools.errors import InputError

            raise InputError(f"--ref-choice must be one of {', '.join(REF_CHOICES)}, not {choice!r}")
        self.dataset, self.shots, self.choice = dataset, max(0, int(shots)), choice
        self.view = view or default_view(None)
        self._descriptors: dict[Path, np.ndarray] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def pick(self, item: Item) -> list[Path]:
        """The item's K references (fewer when the pool is smaller; none for series)."""
        if self.shots == 0 or self.dataset.modality == "series":
            return []
        pool = sorted(self.dataset.reference_pool(item), key=_name_order)
        if self.choice == "first" or len(pool) <= self.shots:
            return pool[:self.shots]
        query = self._descriptor(item.path, item.class_name)
        with self._class_lock(item.class_name):
            candidates = [self._descriptor(p, item.class_name) for p in pool]
        similarity = np.stack(candidates) @ query
        order = sorted(range(len(pool)), key=lambda i: (-round(float(similarity[i]), 5), _name_order(pool[i])))
        return [pool[i] for i in order[:self.shots]]

    def _class_lock(self, class_name: str) -> threading.Lock:
        """One lock per class, so that workers do not describe the same training images twice."""
        with self._guard:
            return self._locks.setdefault(class_name, threading.Lock())

    def _descriptor(self, path: Path, class_name: str) -> np.ndarray:
        found = self._descriptors.get(path)
        if found is None:
            from tools.experts.descriptor import image_descriptor

            found = self._descriptors[path] = image_descriptor(self.view(path, class_name))
        return found
