"""The vision expert: compares a query image with a few reference normal images.

Method (PatchCore/AnomalyDINO-style, with features that need no downloaded weights): every image
is resized to a small working size and turned into a grid of patch descriptors; each query patch
is compared with the reference patches (at about the same place for parts in a fixed pose, or
anywhere, with rotated copies of the references, for textures and freely lying parts); its
distance to the nearest one is the local anomaly distance. The image's raw score is the highest
smoothed local distance; the threshold comes from the references alone (tools/experts/vision/calibration.py).
The heatmap is the same 0..1 score per pixel, so its 0.5 contour encloses exactly the regions
that are beyond the threshold.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from tools.errors import InputError
from tools.experts.vision import cache as expert_cache
from tools.experts.vision.cache import FittedReferences
from tools.experts.vision.calibration import (
    border_colour,
    choose_matching,
    image_score,
    jittered_copies,
    smooth_map,
    threshold_from_normals,
    to_score,
)
from tools.experts.vision.features import FeatureExtractor, get_extractor
from tools.experts.vision.matching import MATCHING_MODES, MemoryBank, build_bank, match, thin_patches
from tools.experts.vision.regions import Region, find_regions

__all__ = ["ExpertReport", "Region", "VisionExpert", "compare"]

METHOD_VERSION = 1
DEFAULT_BACKBONE = "combined"
LONG_SIDE = 320
ROTATION_ANGLES = tuple(range(0, 360, 30))
MAX_FREE_PATCHES = 16384  # bounds the cost of free matching with a rotated memory bank
JITTERED_PER_REFERENCE = 3
_FITTED: OrderedDict[str, FittedReferences] = OrderedDict()  # in-process cache, most recent last
_FITTED_KEEP = 8
_FITTED_LOCK = threading.Lock()


@dataclass
class ExpertReport:
    """The vision expert's evidence about one query image."""

    score: float  # 0..1, 0.5 exactly at the calibrated threshold
    raw_score: float  # anomaly distance of the most anomalous place
    threshold: float  # calibrated raw distance that separates normal from anomalous
    anomalous: bool  # score >= 0.5
    heatmap: np.ndarray = field(repr=False)  # float32 H x W at the query's resolution, 0..1
    regions: list[Region]
    nearest_reference: int  # index of the most similar reference
    method: str

    def summary(self) -> str:
        """A short factual text: score, threshold, verdict and the regions in words."""
        verdict = "anomalous" if self.anomalous else "within the normal range"
        text = (f"Vision expert: anomaly score {self.score:.2f} (0.50 = threshold; raw distance "
                f"{self.raw_score:.3g} vs calibrated threshold {self.threshold:.3g}): {verdict}.")
        if self.regions:
            parts = [f"{r.where} ({r.area:.1%} of the image, peak {r.peak:.2f})" for r in self.regions]
            text += " Regions beyond the threshold: " + "; ".join(parts) + "."
        return text + f" Most similar reference: number {self.nearest_reference + 1}."

    def to_dict(self) -> dict:
        """JSON-ready fields, without the heatmap array."""
        return {"score": round(self.score, 4), "raw_score": round(self.raw_score, 5),
                "threshold": round(self.threshold, 5), "anomalous": self.anomalous,
                "regions": [r.to_dict() for r in self.regions],
                "nearest_reference": self.nearest_reference, "method": self.method}


class VisionExpert:
    """Fit on reference normal images of one class, then score query images."""

    def __init__(self, backbone: str | FeatureExtractor = DEFAULT_BACKBONE, *, cache_dir=None,
                 rotation_invariant: bool = False, matching: str = "auto", long_side: int = LONG_SIDE,
                 window: int = 2, backbone_options: dict | None = None):
        if matching not in (*MATCHING_MODES, "auto"):
            raise InputError(f"matching must be 'position', 'free' or 'auto', not {matching!r}")
        self.extractor = (backbone if isinstance(backbone, FeatureExtractor)
                          else get_extractor(backbone, **(backbone_options or {})))
        self.cache_dir, self.rotation_invariant = cache_dir, rotation_invariant
        self.matching, self.long_side, self.window = matching, long_side, window
        self.fitted: FittedReferences | None = None
        self.loaded_from: str | None = None  # "memory" or "disk" when the last fit was cached
        self.reference_count = 0

    def fit(self, references: list[Image.Image]) -> VisionExpert:
        """Build (or load from the cache) the memory bank and threshold of these references."""
        if not references:
            raise InputError("the vision expert needs at least one reference normal image; add one")
        images = [as_rgb(r, f"reference image {i + 1}") for i, r in enumerate(references)]
        size = working_size(images[0].size, self.long_side)
        key = expert_cache.cache_key(images, self._settings(size))
        fitted, self.loaded_from = _FITTED.get(key), "memory"
        if fitted is None and self.cache_dir:
            fitted, self.loaded_from = expert_cache.load(self.cache_dir, key), "disk"
        if fitted is None:
            fitted, self.loaded_from = self._fit_new(images, size), None
            if self.cache_dir:
                expert_cache.save(self.cache_dir, key, fitted)
        _remember(key, fitted)
        self.fitted, self.reference_count = fitted, len(images)
        return self

    def score(self, query: Image.Image) -> ExpertReport:
        """Compare a query image with the fitted references."""
        if self.fitted is None:
            raise InputError("the vision expert has no references yet; call fit(references) first")
        image, fitted = as_rgb(query, "the query image"), self.fitted
        distances, per_reference = self._distances(fitted.bank, self._grid(image, fitted), fitted.matching)
        smoothed = smooth_map(distances)
        heatmap = upsample(to_score(smoothed, fitted.threshold).astype(np.float32), image.size)
        raw = image_score(smoothed)
        score = float(to_score(raw, fitted.threshold))
        return ExpertReport(score, raw, fitted.threshold, score >= 0.5, heatmap, find_regions(heatmap),
                            int(np.argmin(per_reference)), self.describe())

    def describe(self) -> str:
        """The method in one line (for reports and the UI)."""
        fitted = self.fitted
        matching = fitted.matching if fitted else self.matching
        turn = ", rotated references" if self.rotation_invariant else ""
        return (f"patch nearest-neighbour v{METHOD_VERSION} ({self.extractor.name} features, "
                f"{matching} matching{turn}, {self.reference_count} reference(s))")

    def _settings(self, size: tuple[int, int]) -> dict:
        return {"version": METHOD_VERSION, "extractor": self.extractor.config(), "size": size,
                "matching": self.matching, "rotation_invariant": self.rotation_invariant,
                "window": self.window, "extractor_id": self.extractor.fingerprint()}

    def _fit_new(self, images: list[Image.Image], size: tuple[int, int]) -> FittedReferences:
        working = [image.resize(size, Image.BILINEAR, reducing_gap=2.0) for image in images]
        grids = [self._shifted_grids(image) for image in working]
        variants = [self._rotated_grids(image, shifted) for image, shifted in zip(working, grids, strict=True)]
        bank = build_bank(grids, variants)
        bank.patches, bank.owners = thin_patches(bank.patches, bank.owners, MAX_FREE_PATCHES)
        fitted = FittedReferences(bank, size, "free" if self.rotation_invariant else "position", 0.0)
        loo_scores: dict[str, list[float]] = {}  # per matching mode, computed once

        def leave_one_out(mode: str) -> list[float]:
            if mode not in loo_scores:
                loo_scores[mode] = self._leave_one_out(bank, mode)
            return loo_scores[mode]

        if self.matching != "auto":
            fitted.matching = self.matching
        elif not self.rotation_invariant:
            fitted.matching = choose_matching(leave_one_out, len(images))
        loo = leave_one_out(fitted.matching)
        jittered = self._jittered_scores(working, fitted)
        fitted.threshold = threshold_from_normals(loo, jittered)
        fitted.normal_scores = {"leave_one_out": loo, "jittered": jittered}
        return fitted

    def _shifted_grids(self, image: Image.Image) -> list[np.ndarray]:
        """Feature grids of a reference and of copies shifted by half a cell: a denser memory
        bank, so a query photographed a few pixels off still finds its exact counterpart. The
        built-in extractors encode the image once and move their intermediate maps."""
        half, fill = self.extractor.stride // 2, np.asarray(border_colour(image), np.float32) / 255.0
        shifts = [(0, 0)] + ([] if self.rotation_invariant else [(half, 0), (0, half), (half, half)])
        return self.extractor.shifted_patch_features(to_array(image), shifts, fill)

    def _rotated_grids(self, image: Image.Image, shifted: list[np.ndarray]) -> list[np.ndarray]:
        """The grids free matching searches: the reference (and its shifted copies), plus rotated copies if asked."""
        if not self.rotation_invariant:
            return shifted
        fill = border_colour(image)
        turned = [image.rotate(a, resample=Image.BILINEAR, fillcolor=fill) for a in ROTATION_ANGLES[1:]]
        return [shifted[0]] + [self.extractor.patch_features(to_array(t)) for t in turned]

    def _leave_one_out(self, bank: MemoryBank, mode: str) -> list[float]:
        """Raw score of each reference against the others (empty with a single reference)."""
        if bank.count < 2:
            return []
        return [image_score(smooth_map(self._distances(bank.without(i), bank.first_grid(i), mode)[0]))
                for i in range(bank.count)]

    def _jittered_scores(self, working: list[Image.Image], fitted: FittedReferences) -> list[float]:
        """Raw scores of jittered copies of each reference against the whole bank."""
        scores = []
        for index, image in enumerate(working):
            # leave-one-out does the rest; dropping these with >= 3 references was measured and
            # rejected: the jittered term sets the threshold in every class (expert.md, speed)
            count = JITTERED_PER_REFERENCE if len(working) == 1 else 1
            for copy in jittered_copies(image, count, index, self.rotation_invariant):
                distances, _ = self._distances(fitted.bank, self._grid(copy, fitted), fitted.matching)
                scores.append(image_score(smooth_map(distances)))
        return scores

    def _grid(self, image: Image.Image, fitted: FittedReferences) -> np.ndarray:
        """Standardised patch features of an image at the working size."""
        if image.size != fitted.size:
            image = image.resize(fitted.size, Image.BILINEAR, reducing_gap=2.0)
        return fitted.bank.standardise(self.extractor.patch_features(to_array(image)))

    def _distances(self, bank: MemoryBank, grid: np.ndarray, mode: str):
        return match(bank, grid, mode, self.window)


def compare(query: Image.Image, references: list[Image.Image], *, cache_dir: str | os.PathLike | None = None,
            rotation_invariant: bool = False, matching: str = "auto",
            backbone: str = DEFAULT_BACKBONE, backbone_options: dict | None = None) -> ExpertReport:
    """Score a query image against reference normal images of its class (see VisionExpert)."""
    expert = VisionExpert(backbone, cache_dir=cache_dir, rotation_invariant=rotation_invariant,
                          matching=matching, backbone_options=backbone_options)
    return expert.fit(references).score(query)


def as_rgb(image, what: str) -> Image.Image:
    """An RGB PIL image, or InputError with what to do."""
    if not isinstance(image, Image.Image):
        raise InputError(f"{what} is not an image ({type(image).__name__}); pass a PIL image")
    if image.width == 0 or image.height == 0:
        raise InputError(f"{what} is empty ({image.width} x {image.height} pixels); pass a real image")
    if image.mode in ("I", "I;16", "F"):  # depth maps: stretch the value range to 8 bits
        values = np.asarray(image, dtype=np.float32)
        span = float(values.max() - values.min()) or 1.0
        image = Image.fromarray(((values - values.min()) / span * 255).astype(np.uint8))
    return image if image.mode == "RGB" else image.convert("RGB")


def working_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(width, height) with at most the given long side (never enlarged), the aspect kept,
    both multiples of 16."""
    scale = min(1.0, long_side / max(size))
    return tuple(max(32, int(round(side * scale / 16)) * 16) for side in size)


def to_array(image: Image.Image) -> np.ndarray:
    """RGB float32 array in [0, 1]."""
    return np.asarray(image, dtype=np.float32) / 255.0


def upsample(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A small float map resized (bilinear) to (width, height)."""
    return np.asarray(Image.fromarray(grid.astype(np.float32), mode="F").resize(size, Image.BILINEAR))


def _remember(key: str, fitted: FittedReferences) -> None:
    with _FITTED_LOCK:  # the app may score from several threads
        _FITTED[key] = fitted
        _FITTED.move_to_end(key)
        while len(_FITTED) > _FITTED_KEEP:
            _FITTED.popitem(last=False)
