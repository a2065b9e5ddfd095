"""The "torch" backbone: a user's own pretrained CNN from a local file, for the vision expert.

Imported only when the "torch" backbone is asked for, so torch is never loaded otherwise. Two file
kinds are accepted:
- a TorchScript module (torch.jit.save) whose forward returns one feature map or a list, tuple or
  dict of them (N x C x h x w); every map is resized to the patch grid and stacked;
- a state dict of a ResNet (resnet18, resnet34, resnet50, wide_resnet50_2) with torchvision's key
  names, e.g. torchvision's released ImageNet weights; layer2 and layer3 are used, as in PatchCore.
No weights ship with the project; the accuracy of pretrained weights was not measured here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tools.errors import ConfigError, InputError
from tools.experts.vision.features import FeatureExtractor, register_extractor

try:
    import torch
    from torch import nn
    from torch.nn import functional
except ImportError as error:  # pragma: no cover - torch is a dependency of the project
    raise ConfigError("the 'torch' vision expert backbone needs PyTorch: pip install torch") from error

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# name -> (block kind, blocks per stage, width per group)
ARCHITECTURES = {"resnet18": ("basic", (2, 2, 2), 64), "resnet34": ("basic", (3, 4, 6), 64),
                 "resnet50": ("bottleneck", (3, 4, 6), 64), "wide_resnet50_2": ("bottleneck", (3, 4, 6), 128)}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inputs: int, width: int, stride: int, group_width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _shortcut(inputs, width, stride)

    def forward(self, x):
        out = functional.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return functional.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inputs: int, width: int, stride: int, group_width: int = 64):
        super().__init__()
        inner = width * group_width // 64
        self.conv1 = nn.Conv2d(inputs, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = _shortcut(inputs, width * 4, stride)

    def forward(self, x):
        out = functional.relu(self.bn1(self.conv1(x)))
        out = functional.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return functional.relu(out + (self.downsample(x) if self.downsample is not None else x))


def _shortcut(inputs: int, outputs: int, stride: int):
    if stride == 1 and inputs == outputs:
        return None
    return nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))


class ResNetFeatures(nn.Module):
    """ResNet stem and stages 1-3 with torchvision's parameter names; returns layer2 and layer3."""

    def __init__(self, architecture: str = "resnet18"):
        super().__init__()
        kind, blocks, group_width = ARCHITECTURES[architecture]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inputs, stages = 64, []
        for width, count, stride in zip((64, 128, 256), blocks, (1, 2, 2), strict=True):
            layers = []
            for i in range(count):
                layers.append(block(inputs, width, stride if i == 0 else 1, group_width))
                inputs = width * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages

    def forward(self, x):
        x = functional.max_pool2d(functional.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        layer2 = self.layer2(self.layer1(x))
        return [layer2, self.layer3(layer2)]


def load_network(path: Path, architecture: str):
    """A TorchScript module, or the named ResNet filled from a state dict file."""
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError:
        pass  # not TorchScript: a state dict
    if architecture not in ARCHITECTURES:
        raise InputError(f"unknown architecture {architecture!r}; choose one of: {', '.join(ARCHITECTURES)}")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"cannot read weights from {path.name}: {error}; give a TorchScript file or a state dict") from error
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    network = ResNetFeatures(architecture)
    wanted = {k: v for k, v in state.items() if not k.startswith(("layer4.", "fc."))}
    try:
        missing = network.load_state_dict(wanted, strict=False).missing_keys
    except RuntimeError:  # shapes differ
        missing = ["(parameter shapes differ)"]
    if missing:
        raise InputError(f"{path.name} does not fit {architecture} (missing {missing[0]}); "
                         "name the right architecture")
    return network.eval()


@register_extractor
class TorchExtractor(FeatureExtractor):
    """Intermediate feature maps of a pretrained CNN, resized to the patch grid and stacked."""

    name = "torch"

    def __init__(self, weights: str | Path | None = None, architecture: str = "resnet18"):
        path = Path(weights) if weights else None
        if path is None or not path.is_file():
            raise InputError(f"the 'torch' backbone needs a weights file; {weights!s} is not one")
        self.architecture, self.weights_hash = architecture, hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        self.network = load_network(path, architecture)

    def describe(self) -> str:
        return f"torch features ({self.architecture}, weights from a local file)"

    def config(self) -> dict:
        return {**super().config(), "architecture": self.architecture, "weights": self.weights_hash}

    @torch.no_grad()
    def patch_features(self, image: np.ndarray) -> np.ndarray:
        grid = (image.shape[0] // self.stride, image.shape[1] // self.stride)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        tensor = (tensor - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
        output = self.network(tensor)
        maps = list(output.values()) if isinstance(output, dict) else output
        maps = [maps] if isinstance(maps, torch.Tensor) else maps
        resized = [functional.interpolate(m.float(), size=grid, mode="bilinear", align_corners=False)
                   for m in maps if m.dim() == 4]
        stacked = functional.avg_pool2d(torch.cat(resized, dim=1), 3, 1, 1, count_include_pad=False)
        return stacked[0].permute(1, 2, 0).numpy().astype(np.float32)
