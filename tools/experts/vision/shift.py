"""Feature grids of an image moved by a few pixels, without encoding every moved copy.

The memory bank holds each reference also moved by half a cell (tools/experts/vision/expert.py). The built-in
extractors compute their features from local maps (per-pixel statistics, or convolutions with
2 x 2 pooling) that are then pooled into cells and blurred across cells. Local maps move with
the image: a move by a multiple of the map's cell size is just a move of the map. Only near the
edges do the surroundings change (the uncovered strip in the fill colour, and the far edge where
the content is cut off); there a strip of the moved image is encoded and its maps pasted in. The
result equals encoding the moved image, up to float rounding (tests/test_expert*.py and the
benchmark compare them), at a fraction of the cost.
"""

from __future__ import annotations

import numpy as np

STRIP = 32  # pixels of the moved image encoded along each edge whose surroundings changed
KEEP = 16  # pixels of a strip pasted in; the rest only gives them their true surroundings


def shift_map(values: np.ndarray, dx: int, dy: int, fill=0.0) -> np.ndarray:
    """The map's content moved right by dx and down by dy cells (same size), the uncovered
    first rows and columns set to `fill` (a value per channel, or one value)."""
    if not dx and not dy:
        return values
    h, w = values.shape[:2]
    moved = np.empty_like(values)
    moved[dy:, dx:] = values[:h - dy, :w - dx]
    moved[:dy], moved[:, :dx] = fill, fill
    return moved


def moved_grids(extractor, image: np.ndarray, shifts, fill) -> list[np.ndarray]:
    """Patch grids of `image` (RGB float) moved by each (dx, dy) in pixels, the uncovered strip
    in the RGB `fill` colour. Extractors with `map_scales` (pixels per cell of each local map),
    `local_maps(image)` and `from_maps(maps)` take the quick way; others encode each moved copy."""
    fill = np.asarray(fill, np.float32)
    scales = extractor.map_scales
    unit = max(scales, default=0)
    h, w = image.shape[:2]
    if not unit or h % unit or w % unit or min(h, w) < 2 * STRIP or any(
            d % unit or not 0 <= d <= KEEP // 2 for shift in shifts for d in shift):
        return [extractor.patch_features(shift_map(image, dx, dy, fill)) for dx, dy in shifts]
    maps = extractor.local_maps(image)
    grids = []
    for dx, dy in shifts:
        moved = [shift_map(m, dx // s, dy // s) for m, s in zip(maps, scales, strict=True)]
        if dx or dy:
            _repair_edges(extractor, shift_map(image, dx, dy, fill), moved, dx, dy)
        grids.append(extractor.from_maps(moved))
    return grids


def _repair_edges(extractor, moved_image: np.ndarray, maps: list[np.ndarray], dx: int, dy: int) -> None:
    """Paste the maps of the moved image's edge strips (both ends of each moved axis) into `maps`."""
    for axis, moved in ((1, dx), (0, dy)):
        if not moved:
            continue
        for at_start in (True, False):
            strip_maps = extractor.local_maps(moved_image[_edge(axis, at_start, STRIP)])
            for target, strip, scale in zip(maps, strip_maps, extractor.map_scales, strict=True):
                part = _edge(axis, at_start, KEEP // scale)
                target[part] = strip[part]


def _edge(axis: int, at_start: bool, size: int) -> tuple[slice, slice]:
    """Index of the first or last `size` rows (axis 0) or columns (axis 1)."""
    part = slice(0, size) if at_start else slice(-size, None)
    return (part, slice(None)) if axis == 0 else (slice(None), part)
