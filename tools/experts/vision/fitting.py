"""Fitting a reference set: the memory bank from cached reference features, the matching mode
and the calibrated threshold (tools/experts/vision/calibration.py).

"auto" matching scores the stand-ins (leave-one-out normals, jittered copies, stand-in flaws)
with position and with free matching and keeps position matching unless free matching lifts the
flaws clearly further above the normals (by FREE_MARGIN: position matching also catches parts in
the wrong place, which free matching cannot, so it wins ties); with a single reference there is no leave-one-out, and position matching is used
(fixed-pose photographs are the common case at an inspection station; classes that need free
matching say so in their settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tools.experts.vision.calibration import image_score, separation, smooth_map, threshold_from_stand_ins
from tools.experts.vision.matching import MATCHING_MODES, MemoryBank, build_bank, match
from tools.experts.vision.reference_features import ROTATION_ANGLES, ReferenceFeatures

MAX_FREE_PATCHES = 16384  # above this the free-matching bank keeps a coreset of each reference's patches
TURNED_PATCHES = 2048  # a reference and its 11 turned copies are thinned to a coreset of this many patches
JITTERED_SINGLE = 3  # jittered copies of a single reference (with more, leave-one-out does the rest)
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
    modes = [matching] if matching != "auto" else list(MATCHING_MODES) if len(prepared) > 1 else ["position"]
    scores = {mode: stand_in_scores(bank, prepared, mode, rotation, window) for mode in modes}
    gains = {m: separation(**scores[m]) - (np.log(FREE_MARGIN) if m == "free" and len(modes) > 1 else 0.0)
             for m in modes}
    mode = max(modes, key=gains.get)
    return Fitted(bank, size, mode, threshold_from_stand_ins(**scores[mode]), len(modes) > 1, scores[mode])


def assemble_bank(prepared: list[ReferenceFeatures], rotation: bool) -> MemoryBank:
    """The memory bank of a reference set, from each reference's cached features."""
    grids, angles, patches = [], [], []
    for reference in prepared:
        moved = list(reference.grids())
        turned = list(reference.turned()) if rotation else []
        grids.append(moved + turned)
        angles.append([0.0] * len(moved) + [float(a) for a in ROTATION_ANGLES[1:]][:len(turned)])
        limit = min(MAX_FREE_PATCHES // len(prepared), TURNED_PATCHES if rotation else MAX_FREE_PATCHES)
        patches.append(reference.free_patches(rotation, limit))
    return build_bank(grids, angles, patches, prepared[0].extractor.standardise)


def stand_in_scores(bank: MemoryBank, prepared: list[ReferenceFeatures], mode: str, rotation: bool,
                    window: int) -> dict[str, list[float]]:
    """Raw scores of the normal and the flawed stand-ins under one matching mode."""
    def raw(grid_bank, grid, cells=None):
        return image_score(smooth_map(match(grid_bank, grid, mode, window, cells)[0]))

    count = len(prepared)
    leave_one_out = [raw(bank.without(i), bank.first_grid(i)) for i in range(count)] if count > 1 else []
    jittered, flaws = [], []
    for reference in prepared:
        for grid in reference.jittered(JITTERED_SINGLE if count == 1 else 1, rotation):
            jittered.append(raw(bank, bank.standardise(grid.astype(np.float32))))
        grids, boxes = reference.flaws()
        for grid, (r0, r1, c0, c1) in zip(grids, boxes, strict=True):
            cells = (slice(int(r0), int(r1)), slice(int(c0), int(c1)))
            flaws.append(raw(bank, bank.standardise(grid.astype(np.float32)), cells))
    return {"leave_one_out": leave_one_out, "jittered": jittered, "flaws": flaws}
