"""The "torch" backbone: a local weights file (random weights here), loaded lazily."""

import numpy as np
import pytest

from tests.helpers.defects import add_defect, jitter, textured_part
from tools.errors import InputError
from tools.experts.vision.expert import VisionExpert

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def part():
    return textured_part(128, seed=2)


@pytest.fixture(scope="module")
def state_dict_file(tmp_path_factory):
    from tools.experts.vision.torch_backbone import ResNetFeatures

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18_random.pt"
    torch.save(ResNetFeatures("resnet18").state_dict(), path)
    return path


def test_state_dict_backbone_scores_with_grid_features(part, state_dict_file):
    expert = VisionExpert("torch", backbone_options={"weights": state_dict_file}, long_side=128)
    features = expert.extractor.patch_features(np.zeros((128, 96, 3), np.float32))
    assert features.shape[:2] == (16, 12) and features.shape[2] == 128 + 256
    report = expert.fit([jitter(part, 1)]).score(add_defect(part, "spot", 1)[0])
    assert report.heatmap.shape == (128, 128) and "torch features" in report.method


def test_torchscript_backbone_is_loaded(part, tmp_path):
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=8, padding=1), torch.nn.ReLU())
    path = tmp_path / "tiny.ts"
    torch.jit.save(torch.jit.script(network), str(path))
    expert = VisionExpert("torch", backbone_options={"weights": path}, long_side=128).fit([part])
    assert expert.fitted.bank.grids.shape[-1] == 8


def test_weights_that_do_not_fit_the_architecture_are_an_input_error(state_dict_file):
    with pytest.raises(InputError, match="does not fit resnet50"):
        VisionExpert("torch", backbone_options={"weights": state_dict_file, "architecture": "resnet50"})


def test_missing_weights_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="weights file"):
        VisionExpert("torch", backbone_options={"weights": tmp_path / "absent.pt"})
