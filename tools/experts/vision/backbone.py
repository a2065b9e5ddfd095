"""Which feature extractor the vision expert uses: the pretrained one when it is installed.

"auto" (the default) is the ImageNet-pretrained EfficientNet-Lite0 (tools/experts/vision/
pretrained.py) when its weights package is installed, else the weight-free "combined" features;
the fallback is stated in the expert's report, so nobody mistakes it for the pretrained expert.
"""

from __future__ import annotations

from tools.experts.vision.features import FeatureExtractor, get_extractor

PRETRAINED = "efficientnet_lite"
FALLBACK = "combined"


def resolve_backbone(backbone, options: dict | None = None) -> tuple[FeatureExtractor, list[str]]:
    """(extractor, notes for the report) for a backbone name, "auto", or an extractor instance."""
    if isinstance(backbone, FeatureExtractor):
        return backbone, []
    if backbone != "auto":
        return get_extractor(backbone, **(options or {})), []
    from tools.experts.vision import pretrained

    if pretrained.available():
        return get_extractor(PRETRAINED, **(options or {})), []
    note = (f"The vision expert used its weight-free fallback features: {pretrained.missing_reason()}; "
            "its scores are less reliable than with the pretrained backbone.")
    return get_extractor(FALLBACK), [note]


def warm_up() -> None:
    """Load the default backbone and run it once on a blank image of the working size (first calls are slow)."""
    import numpy as np

    extractor, _ = resolve_backbone("auto")
    extractor.patch_features(np.zeros((384, 384, 3), np.float32))
