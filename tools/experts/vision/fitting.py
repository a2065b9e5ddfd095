"""Fitting a reference set: the memory bank from cached reference features, the matching mode
and the calibrated threshold (tools/experts/vision/calibration.py).

"auto" matching scores the stand-ins (leave-one-out normals, jittered copies, stand-in flaws)
with position and with free matching and keeps position matching unless free matching lifts the
flaws clearly further above the normals (by FREE_MARGIN: position matching also catches parts in
the wrong place, which free matching cannot, so it wins ties); with fewer than three references
leave-one-out has too few normals to choose by, and position matching is used
(fixed-pose photographs are the common case at an inspection station; classes that need free
matching say so in their settings).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tools.experts.vision import cache
from tools.experts.vision.calibration import image_score, separation, smooth_map, threshold_from_stand_ins
from tools.experts.vision.matching import MATCHING_MODES, MemoryBank, build_bank, match
from tools.experts.vision.reference_features import FLAWS_PER_REFERENCE, ROTATION_ANGLES, ReferenceFeatures

MAX_FREE_PATCHES = 16384  # above this the free-matching bank keeps a coreset of each reference's patches
TURNED_PATCHES = 2048  # a reference and its 11 turned copies are thinned to a coreset of this many patches
JITTERED_SINGLE = 3  # jittered copies of a single reference (with more, leave-one-out does the rest)
AUTO_MIN = 3  # references "auto" needs to choose: with two, leave-one-out has two normals to go by
FREE_MARGIN = 1.25  # free matching must separate flaws from normals this many times better to be chosen


@dataclass
class Fitted:
    """Everything `score` needs about one reference set."""

    bank: MemoryBank
    size: tuple[int, int]  # working (width, height) every image is resized to
    matching: str  # "position" or "free"
    threshold: float
    chosen: bool = False  # True when the matching mode was chosen by leave-one-out
    stand_ins: dict = field(default_factory=dict)  # raw scores: leave_one_out, jittered, flaws


def fit_references(prepared: list[ReferenceFeatures], size: tuple[int, int], matching: str, rotation: bool,
                   window: int) -> Fitted:
    """The fitted set: bank, matching mode (chosen when "auto") and threshold."""
    bank = assemble_bank(prepared, rotation)
    modes = [matching] if matching != "auto" else list(MATCHING_MODES) if len(prepared) >= AUTO_MIN else ["position"]
    scores = {mode: stand_in_scores(DistanceMaps(bank, prepared, mode, window, rotation), rotation)
              for mode in modes}
    gains = {m: separation(**scores[m]) - (np.log(FREE_MARGIN) if m == "free" and len(modes) > 1 else 0.0)
             for m in modes}
    mode = max(modes, key=gains.get)
    return Fitted(bank, size, mode, threshold_from_stand_ins(**scores[mode]), len(modes) > 1, scores[mode])


def assemble_bank(prepared: list[ReferenceFeatures], rotation: bool) -> MemoryBank:
    """The memory bank of a reference set from each reference's cached features."""
    limit = min(MAX_FREE_PATCHES // len(prepared), TURNED_PATCHES if rotation else MAX_FREE_PATCHES)

    def features(reference: ReferenceFeatures):
        return list(reference.grids()), list(reference.turned()) if rotation else [], reference.free_patches(rotation, limit)
    grids, angles, patches = [], [], []
    for moved, turned, free in side_by_side(features, prepared):
        grids.append(moved + turned)
        angles.append([0.0] * len(moved) + [float(a) for a in ROTATION_ANGLES[1:]][:len(turned)])
        patches.append(free)
    return build_bank(grids, angles, patches, prepared[0].extractor.standardise)


def side_by_side(work, items: list) -> list:
    """work(item) for every item, two at a time on a machine of two or more cores, results in order.
    A new reference's encodings and distance maps are torch and numpy work that releases the GIL,
    so a first inspection with new references takes about half the time on two free cores; with
    the torch threads pretrained.configure_threads sets, two at a time fill the cores."""
    if len(items) < 2 or (os.cpu_count() or 1) < 2:
        return [work(item) for item in items]
    with ThreadPoolExecutor(2, thread_name_prefix="expert-fit") as pool:
        return list(pool.map(work, items))


class DistanceMaps:
    """Distance maps of each reference's stand-ins to each reference of the set separately.

    With unstandardised features a map depends only on the stand-in and the one reference, not
    on the rest of the set, so the maps of one reference's stand-ins against another reference
    are cached together by content, in memory and on disk: a set that shares references with one
    fitted before (the k nearest references of the next query, also after a restart) reuses them."""

    def __init__(self, bank: MemoryBank, prepared: list[ReferenceFeatures], mode: str, window: int,
                 rotation: bool):
        self.bank, self.prepared, self.mode, self.window, self.rotation = bank, prepared, mode, window, rotation
        self.cacheable = not bank.standardised
        self._alone: dict[int, MemoryBank] = {}

    def of(self, owner: ReferenceFeatures, names: list[str], load) -> dict[str, np.ndarray]:
        """name -> R x h x w: each of one reference's stand-ins against each reference of the set.
        `load()` gives the stand-ins, name -> (grid, cells compared or None for all); it is called
        only when a map is not cached (the maps are cached under the owner's content and the names)."""
        loaded = {}

        def grids():
            if not loaded:
                loaded.update({name: (self.bank.standardise(grid.astype(np.float32)), cells)
                               for name, (grid, cells) in load().items()})
            return loaded
        per_reference = [self._to_one(j, reference, owner, names, grids) for j, reference in enumerate(self.prepared)]
        return {name: np.stack([maps[name] for maps in per_reference]).astype(np.float32) for name in names}

    def _to_one(self, index: int, reference: ReferenceFeatures, owner: ReferenceFeatures, names, grids):
        def compute():
            return {name: self._map(index, grid, cells) for name, (grid, cells) in grids().items()}
        if not self.cacheable:
            return compute()
        what = f"maps-{owner.sha[:16]}-{'-'.join(names)}-{self._variant(index)}"
        return cache.cached(reference.key(what), compute, reference.cache_dir)

    def _variant(self, index: int) -> str:
        """What a map depends on besides the two images: for free matching, how many of the
        reference's patches the bank kept (all of them, or a coreset when the set is large)."""
        kept = f"-p{int(np.count_nonzero(self.bank.owners == index))}" if self.mode == "free" else ""
        return f"{self.mode}-w{self.window}-r{int(self.rotation)}{kept}"

    def _map(self, index: int, grid: np.ndarray, cells) -> np.ndarray:
        if index not in self._alone:
            self._alone[index] = self.bank.only(index)
        return match(self._alone[index], grid, self.mode, self.window, cells)[0]


def stand_in_scores(maps: DistanceMaps, rotation: bool) -> dict[str, list[float]]:
    """Raw scores of the normal and the flawed stand-ins under one matching mode."""
    def raw(distances: np.ndarray) -> float:
        return image_score(smooth_map(distances.min(axis=0)))

    count = len(maps.prepared)
    copies = JITTERED_SINGLE if count == 1 else 1
    names = (["itself"] if count > 1 else []) + [f"jitter{copies}{int(rotation)}x{k}" for k in range(copies)] + \
        [f"flaw{k}" for k in range(FLAWS_PER_REFERENCE)]
    every = side_by_side(lambda r: maps.of(r, names, lambda: stand_ins(r, copies, rotation, count > 1)), maps.prepared)
    leave_one_out, jittered, flaws = [], [], []
    for i, found in enumerate(every):
        if count > 1:
            leave_one_out.append(raw(np.delete(found["itself"], i, axis=0)))
        jittered += [raw(found[name]) for name in names if name.startswith("jitter")]
        flaws += [raw(found[name]) for name in names if name.startswith("flaw")]
    return {"leave_one_out": leave_one_out, "jittered": jittered, "flaws": flaws}


def stand_ins(reference: ReferenceFeatures, copies: int, rotation: bool, itself: bool) -> dict[str, tuple]:
    """A reference's stand-ins, name -> (grid, cells compared or None for all): itself (for
    leave-one-out), its jittered copies and its stand-in flaws (only the cells each flaw changed)."""
    found = {"itself": (reference.grids()[0], None)} if itself else {}
    for k, grid in enumerate(reference.jittered(copies, rotation)):
        found[f"jitter{copies}{int(rotation)}x{k}"] = (grid, None)
    grids, boxes = reference.flaws()
    for k, (grid, (r0, r1, c0, c1)) in enumerate(zip(grids, boxes, strict=True)):
        found[f"flaw{k}"] = (grid, (slice(int(r0), int(r1)), slice(int(c0), int(c1))))
    return found
