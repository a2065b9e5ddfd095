"""The vision expert: compares a query image with a few reference normal images.

Method (PatchCore-style): every image is resized to a small working size and turned into a grid
of patch descriptors: by default mid-level features of an ImageNet-pretrained EfficientNet-Lite0
(tools/experts/vision/pretrained.py), or, when its weights package is missing, the weight-free
built-in features (the report says which). Each query patch is compared with the reference
patches (at about the same place for parts in a fixed pose, or anywhere, for textures and loose
parts; turned references for parts that lie at any angle); its distance to the nearest one is
the local anomaly distance. The image's raw score is the highest smoothed local distance; the
threshold comes from the references alone (tools/experts/vision/calibration.py). The heatmap is
the same 0..1 score per pixel, so its 0.5 contour encloses exactly the regions beyond the threshold.
Each reference's features are cached by content (tools/experts/vision/cache.py), so fitting a
set of references mostly gathers cached features.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from tools.errors import InputError
from tools.experts.vision import cache
from tools.experts.vision.backbone import resolve_backbone
from tools.experts.vision.calibration import image_score, smooth_map, to_score
from tools.experts.vision.fitting import Fitted, fit_references
from tools.experts.vision.matching import MATCHING_MODES, match
from tools.experts.vision.reference_features import ReferenceFeatures, to_array
from tools.experts.vision.regions import Region, find_regions

__all__ = ["ExpertReport", "Region", "VisionExpert", "compare"]

METHOD_VERSION = 2
DEFAULT_BACKBONE = "auto"  # the pretrained EfficientNet-Lite0 when installed, else the weight-free "combined"
LONG_SIDE = 384  # working long side: 384 beat 320 and 256 in the cross-validation (expert.md)
MIN_LONG_SIDE = 256  # smaller images are enlarged to this
_FITTED: OrderedDict[str, Fitted] = OrderedDict()  # fitted reference sets, most recent last
_FITTED_KEEP = 32
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
    notes: list[str] = field(default_factory=list)  # caveats worth telling the person (e.g. a fallback)

    def summary(self) -> str:
        """A short factual text: score, threshold, verdict and the regions in words."""
        verdict = "anomalous" if self.anomalous else "within the normal range"
        text = (f"Vision expert: anomaly score {self.score:.2f} (0.50 = threshold; raw distance "
                f"{self.raw_score:.3g} vs calibrated threshold {self.threshold:.3g}): {verdict}.")
        if self.regions:
            parts = [f"{r.where} ({r.area:.1%} of the image, peak {r.peak:.2f})" for r in self.regions]
            text += " Regions beyond the threshold: " + "; ".join(parts) + "."
        text += f" Most similar reference: number {self.nearest_reference + 1}."
        return " ".join([text, *self.notes])

    def to_dict(self) -> dict:
        """JSON-ready fields, without the heatmap array."""
        return {"score": round(self.score, 4), "raw_score": round(self.raw_score, 5),
                "threshold": round(self.threshold, 5), "anomalous": self.anomalous,
                "regions": [r.to_dict() for r in self.regions],
                "nearest_reference": self.nearest_reference, "method": self.method, "notes": list(self.notes)}


class VisionExpert:
    """Fit on reference normal images of one class, then score query images."""

    def __init__(self, backbone=DEFAULT_BACKBONE, *, cache_dir=None, rotation_invariant: bool = False,
                 matching: str = "auto", long_side: int = LONG_SIDE, window: int = 2,
                 backbone_options: dict | None = None):
        if matching not in (*MATCHING_MODES, "auto"):
            raise InputError(f"matching must be 'position', 'free' or 'auto', not {matching!r}")
        self.extractor, self.notes = resolve_backbone(backbone, backbone_options)
        self.cache_dir, self.rotation_invariant = cache_dir, rotation_invariant
        self.matching, self.long_side, self.window = matching, long_side, window
        self.fitted: Fitted | None = None
        self.loaded_from: str | None = None  # "memory" when the last fit was a set fitted before
        self.reference_count = 0

    def fit(self, references: list[Image.Image]) -> VisionExpert:
        """Gather the references' features (cached by content), build the bank, calibrate."""
        if not references:
            raise InputError("the vision expert needs at least one reference normal image; add one")
        images = [as_rgb(r, f"reference image {i + 1}") for i, r in enumerate(references)]
        size = working_size(images[0].size, self.long_side)
        prepared = [ReferenceFeatures(image, cache.image_hash(image), size, self.extractor, self.cache_dir)
                    for image in images]
        key = self._set_key([p.sha for p in prepared], size)
        with _FITTED_LOCK:
            fitted = _FITTED.get(key)
        self.loaded_from = "memory" if fitted is not None else None
        if fitted is None:
            fitted = fit_references(prepared, size, self.matching, self.rotation_invariant, self.window)
            _remember(key, fitted)
        self.fitted, self.reference_count = fitted, len(images)
        return self

    def score(self, query: Image.Image) -> ExpertReport:
        """Compare a query image with the fitted references."""
        if self.fitted is None:
            raise InputError("the vision expert has no references yet; call fit(references) first")
        image, fitted = as_rgb(query, "the query image"), self.fitted
        distances, per_reference = match(fitted.bank, self.query_grid(image), fitted.matching, self.window)
        smoothed = smooth_map(distances)
        heatmap = upsample(to_score(smoothed, fitted.threshold).astype(np.float32), image.size)
        raw = image_score(smoothed)
        score = float(to_score(raw, fitted.threshold))
        return ExpertReport(score, raw, fitted.threshold, score >= 0.5, heatmap, find_regions(heatmap),
                            int(np.argmin(per_reference)), self.describe(), list(self.notes))

    def query_grid(self, image: Image.Image) -> np.ndarray:
        """The query's features in the bank's space (kept in memory by content: a follow-up, or
        an image that is later a reference, is not encoded again)."""
        size = self.fitted.size
        key = cache.entry_key(cache.image_hash(image), self.extractor.fingerprint(), size, "query")

        def encode():
            working = image if image.size == size else image.resize(size, Image.BILINEAR, reducing_gap=2.0)
            return {"grid": self.extractor.patch_features(to_array(working))}
        return self.fitted.bank.standardise(cache.cached(key, encode)["grid"].astype(np.float32))

    def describe(self) -> str:
        """The method in one line (for reports and the UI)."""
        fitted = self.fitted
        matching = fitted.matching if fitted else self.matching
        chosen = " chosen by leave-one-out" if fitted and fitted.chosen else ""
        turn = ", turned references" if self.rotation_invariant else ""
        return (f"patch nearest-neighbour v{METHOD_VERSION} ({self.extractor.describe()}, "
                f"{matching} matching{chosen}{turn}, {self.reference_count} reference(s))")

    def _set_key(self, shas: list[str], size: tuple[int, int]) -> str:
        settings = {"version": METHOD_VERSION, "extractor": self.extractor.fingerprint(), "size": size,
                    "matching": self.matching, "rotation_invariant": self.rotation_invariant, "window": self.window}
        text = json.dumps({"references": shas, "settings": settings}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def compare(query: Image.Image, references: list[Image.Image], *, cache_dir: str | os.PathLike | None = None,
            rotation_invariant: bool = False, matching: str = "auto",
            backbone=DEFAULT_BACKBONE, backbone_options: dict | None = None) -> ExpertReport:
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
    """(width, height) with at most the given long side, the aspect kept, both multiples of 16;
    small images are enlarged to MIN_LONG_SIDE (a patch grid of a few cells cannot tell a flaw
    from its surroundings)."""
    scale = min(1.0, long_side / max(size))
    if max(size) * scale < MIN_LONG_SIDE:
        scale = min(long_side, MIN_LONG_SIDE) / max(size)
    return tuple(max(32, int(round(side * scale / 16)) * 16) for side in size)


def upsample(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A small float map resized (bilinear) to (width, height)."""
    return np.asarray(Image.fromarray(grid.astype(np.float32), mode="F").resize(size, Image.BILINEAR))


def _remember(key: str, fitted: Fitted) -> None:
    with _FITTED_LOCK:  # the app may score from several threads
        _FITTED[key] = fitted
        _FITTED.move_to_end(key)
        while len(_FITTED) > _FITTED_KEEP:
            _FITTED.popitem(last=False)
