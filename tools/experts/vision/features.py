"""Patch feature extractors for the vision expert: a registry of name -> class.

An extractor turns an RGB float image (H x W x 3, values in [0, 1], at the expert's working
resolution) into a grid of patch descriptors (h x w x d float32, one per `stride` pixels). The
built-in extractors need no downloaded weights:

- "colour_texture": hand-built multi-scale colour, gradient-orientation and texture statistics;
- "random_conv": a fixed, seeded random three-layer convolutional projection (a CNN whose weights
  are random numbers, not learned ones), with layer 2 and 3 maps stacked as PatchCore stacks
  its backbone's middle layers;
- "combined" (the default): both of the above, side by side;
- "torch" (tools/experts/vision/torch_backbone.py): a user's own pretrained network loaded from a local file.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from tools.errors import InputError
from tools.experts.vision.shift import moved_grids

EXTRACTORS: dict[str, type[FeatureExtractor]] = {}
# extractors that need torch live in their own modules, imported when first asked for
LAZY_EXTRACTORS = {"torch": "tools.experts.vision.torch_backbone",
                   "efficientnet_lite": "tools.experts.vision.pretrained"}


def register_extractor(cls):
    """Class decorator: make a feature extractor available under its `name`."""
    EXTRACTORS[cls.name] = cls
    return cls


def get_extractor(name: str, **options) -> FeatureExtractor:
    """An extractor by registered name; options go to its constructor."""
    if name in LAZY_EXTRACTORS and name not in EXTRACTORS:
        importlib.import_module(LAZY_EXTRACTORS[name])  # registers itself; torch is imported only now
    if name not in EXTRACTORS:
        known = ", ".join(sorted(set(EXTRACTORS) | set(LAZY_EXTRACTORS)))
        raise InputError(f"unknown vision expert backbone {name!r}; choose one of: {known}")
    return EXTRACTORS[name](**options)


class FeatureExtractor:
    """Base class: subclasses set `name` and implement `patch_features`."""

    name: ClassVar[str] = ""
    stride: int = 8
    map_scales: tuple[int, ...] = ()  # local maps, for quick shifted grids (tools/experts/vision/shift.py)

    def patch_features(self, image: np.ndarray) -> np.ndarray:
        """Patch descriptors (h x w x d float32) of an RGB float image in [0, 1]."""
        raise NotImplementedError

    def shifted_patch_features(self, image: np.ndarray, shifts, fill) -> list[np.ndarray]:
        """Patch descriptors of the image moved right by dx and down by dy pixels, for each
        (dx, dy) in `shifts`, the uncovered strip painted in the RGB `fill` colour (in [0, 1]).
        Extractors built from local maps encode the image once (tools/experts/vision/shift.py); others
        encode each moved copy."""
        return moved_grids(self, image, shifts, fill)

    standardise: bool = True  # features brought to unit spread per dimension before matching

    def describe(self) -> str:
        """The features in a few words, for the expert's method line."""
        return f"weight-free {self.name} features"

    def config(self) -> dict:
        """Everything that changes the features; part of the feature cache key."""
        return {"name": self.name, "stride": self.stride, "standardise": self.standardise}

    def fingerprint(self) -> str:
        """A short stable hash of `config()`."""
        text = json.dumps(self.config(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def opponent_colour(image: np.ndarray) -> np.ndarray:
    """Brightness and two colour-opponent channels (decorrelated roughly like Lab)."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    bright = (r + g + b) / 3.0
    return np.stack([bright, r - g, 0.5 * (r + g) - b], axis=-1).astype(np.float32)


def cell_pool(values: np.ndarray, stride: int) -> np.ndarray:
    """Average over non-overlapping stride x stride cells (the trailing part is cropped)."""
    h, w = values.shape[0] // stride, values.shape[1] // stride
    cells = values[: h * stride, : w * stride].reshape(h, stride, w, stride, -1)
    return (cells.sum(axis=1).sum(axis=2) / (stride * stride)).astype(np.float32)  # quicker than mean over (1, 3)


def neighbourhood(grid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian average of each cell with its neighbours (a wider receptive field)."""
    return ndimage.gaussian_filter(grid, sigma=(sigma, sigma, 0), mode="nearest")


@register_extractor
class ColourTextureExtractor(FeatureExtractor):
    """Multi-scale colour, gradient-orientation histogram and local contrast per patch."""

    name = "colour_texture"

    def __init__(self, bins: int = 8, scales: tuple[float, ...] = (0.0, 1.0, 2.0)):
        self.bins, self.scales = bins, tuple(scales)

    def config(self) -> dict:
        return {**super().config(), "bins": self.bins, "scales": self.scales}

    map_scales = (1,)  # one local map, per pixel (tools/experts/vision/shift.py)

    def patch_features(self, image: np.ndarray) -> np.ndarray:
        return self.from_maps(self.local_maps(image))

    def local_maps(self, image: np.ndarray) -> list[np.ndarray]:
        """Per-pixel colour, orientation and contrast (filters reach at most 5 pixels)."""
        colour = opponent_colour(image)
        bright = colour[..., 0]
        gy, gx = ndimage.sobel(bright, axis=0), ndimage.sobel(bright, axis=1)
        return [np.concatenate([colour, self._orientation_histogram(gx, gy), self._contrast(bright)], axis=-1)]

    def from_maps(self, maps: list[np.ndarray]) -> np.ndarray:
        """Cell averages, and their Gaussian neighbourhoods."""
        cells = cell_pool(maps[0], self.stride)
        levels = [cells if s == 0 else neighbourhood(cells, s) for s in self.scales]
        return np.concatenate(levels, axis=-1).astype(np.float32)

    def _orientation_histogram(self, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        """Gradient magnitude spread over `bins` unsigned orientations (soft-assigned)."""
        magnitude = np.hypot(gx, gy)
        angle = (np.arctan2(gy, gx) % np.pi) / np.pi * self.bins
        low = np.floor(angle).astype(int) % self.bins
        weight_high = angle - np.floor(angle)
        hist = np.zeros(gx.shape + (self.bins,), np.float32)
        rows, cols = np.indices(gx.shape)
        hist[rows, cols, low] += magnitude * (1 - weight_high)
        hist[rows, cols, (low + 1) % self.bins] += magnitude * weight_high
        return hist

    @staticmethod
    def _contrast(bright: np.ndarray) -> np.ndarray:
        """Local standard deviation and Laplacian energy: fine texture."""
        mean = ndimage.uniform_filter(bright, 5)
        std = np.sqrt(np.maximum(ndimage.uniform_filter(bright**2, 5) - mean**2, 0))
        lap = np.abs(ndimage.laplace(ndimage.gaussian_filter(bright, 1.0)))
        return np.stack([std, lap], axis=-1).astype(np.float32)


def conv3x3(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """'Same' 3x3 convolution of an H x W x C map with C*9 x K weights, as matrix products."""
    h, w, channels = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    if channels < 16:  # few channels: one product over all 3x3 windows is quickest
        windows = sliding_window_view(padded, (3, 3), axis=(0, 1))  # H x W x C x 3 x 3
        return (windows.reshape(h * w, -1) @ weights).reshape(h, w, -1)
    kernel = weights.reshape(channels, 3, 3, -1)
    out = np.zeros((h, w, weights.shape[1]), np.float32)
    for dy in range(3):  # many channels: nine shifted products avoid copying every window
        for dx in range(3):
            out += padded[dy:dy + h, dx:dx + w] @ kernel[:, dy, dx]
    return out


def avg_pool2(x: np.ndarray) -> np.ndarray:
    """2 x 2 average pooling."""
    h, w = x.shape[0] // 2, x.shape[1] // 2
    x = x[: 2 * h, : 2 * w]
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) * np.float32(0.25)


@register_extractor
class RandomConvExtractor(FeatureExtractor):
    """A fixed random 3-layer CNN (seeded): conv3x3 -> ReLU -> pool, three times."""

    name = "random_conv"

    def __init__(self, widths: tuple[int, ...] = (32, 64, 96), seed: int = 7):
        self.widths, self.seed = tuple(widths), seed
        rng = np.random.default_rng(seed)
        self.weights, inputs = [], 3
        for width in self.widths:
            w = rng.standard_normal((inputs * 9, width)).astype(np.float32)
            w -= w.mean(axis=0, keepdims=True)  # zero-mean filters respond to structure, not level
            self.weights.append((w * np.sqrt(2.0 / (inputs * 9))).astype(np.float32))  # float32 math
            inputs = width
        step = 2 ** (len(self.widths) - 1)  # pixels per cell of the last layer's input
        self.map_scales = (1, step, step)  # local maps (tools/experts/vision/shift.py): see local_maps

    def config(self) -> dict:
        return {**super().config(), "widths": self.widths, "seed": self.seed}

    def patch_features(self, image: np.ndarray) -> np.ndarray:
        return self.from_maps(self.local_maps(image))

    def local_maps(self, image: np.ndarray) -> list[np.ndarray]:
        """Opponent colour, the input of the last layer, and the last layer before its pooling
        (each output reaches about 8 pixels of the image; every pooling is aligned to 4 pixels)."""
        colour = opponent_colour(image)
        x = colour * 2.0
        for weights in self.weights[:-1]:
            x = avg_pool2(np.maximum(conv3x3(x, weights), 0.0))
        return [colour, x, np.maximum(conv3x3(x, self.weights[-1]), 0.0)]

    def from_maps(self, maps: list[np.ndarray]) -> np.ndarray:
        """Cell colour, the pooled layer-2 map and the pooled layer-3 map, lightly blurred."""
        colour, before_last, last = maps
        layer3 = avg_pool2(last)
        h, w = layer3.shape[:2]
        stacked = np.concatenate([cell_pool(colour, self.stride)[:h, :w], avg_pool2(before_last)[:h, :w], layer3],
                                 axis=-1)
        return neighbourhood(stacked, 1.0).astype(np.float32)


@register_extractor
class CombinedExtractor(FeatureExtractor):
    """Both built-in descriptors side by side: colour/texture statistics and the random CNN.

    Measured best of the built-in ones (benchmarks/results/expert.md): the statistics catch
    colour changes and smooth stains, the random CNN catches shape and fine structure."""

    name = "combined"

    def __init__(self, seed: int = 7):
        self.statistics, self.network = ColourTextureExtractor(), RandomConvExtractor(seed=seed)

    def config(self) -> dict:
        return {**super().config(), "parts": [self.statistics.config(), self.network.config()]}

    def patch_features(self, image: np.ndarray) -> np.ndarray:
        network = self.network.patch_features(image)
        h, w = network.shape[:2]
        return np.concatenate([self.statistics.patch_features(image)[:h, :w], network], axis=-1)

    def shifted_patch_features(self, image: np.ndarray, shifts, fill) -> list[np.ndarray]:
        networks = self.network.shifted_patch_features(image, shifts, fill)
        statistics = self.statistics.shifted_patch_features(image, shifts, fill)
        return [np.concatenate([s[:n.shape[0], :n.shape[1]], n], axis=-1)
                for s, n in zip(statistics, networks, strict=True)]
