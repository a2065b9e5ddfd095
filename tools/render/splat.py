"""Which point is seen at each pixel: points drawn as discs ("splats") into a z-buffer, with numpy.

Each point covers a disc whose radius comes from the local point spacing, so a sparse or unevenly
sampled cloud renders as a closed surface and points on the far side stay hidden behind it. The
result is an index image (the visible point per pixel, -1 for background) from which shading,
colours and per-point values are looked up; open3d's own renderer needs Vulkan, which a headless
server does not have.
"""

from __future__ import annotations

import numpy as np

from tools.render.camera import Camera

MAX_RADIUS = 8  # pixels: larger gaps are holes in the scan, not sparse sampling
DISC_FILL = 1.1  # disc radius as a share of the spacing: neighbouring discs overlap, without blurring detail
HOLE_PIXELS = 3  # background gaps up to about twice this wide inside the surface are closed
HOLE_SHARE = 0.6  # a far pixel is a gap in a nearer surface when this share of its surroundings is that surface
_DEPTH_BITS = 62  # depth and point index share one int64 key, so np.minimum.at keeps the nearest point


def splat_radii(spacing: np.ndarray | float, camera: Camera) -> np.ndarray:
    """Disc radius in whole pixels (0 = a single pixel) for each point's local spacing (world units)."""
    pixels = np.asarray(spacing, np.float32) * DISC_FILL * camera.size[0] / camera.span
    return np.clip(np.round(pixels), 0, MAX_RADIUS).astype(np.int64)


def visible_points(points: np.ndarray, camera: Camera, radii: np.ndarray | int = 0,
                   tolerance: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(index, depth): H x W int64 index of the nearest point at each pixel (-1: none), and its depth (inf: none).

    tolerance (world units): a pixel that lies deeper than this behind the surface around it shows
    the far side through a gap between discs; it takes the nearest point of that surface instead.
    """
    width, height = camera.size
    cols, rows, depth = camera.project(points)
    radii = np.broadcast_to(np.asarray(radii, np.int64), (len(points),))
    index_bits = max(1, int(len(points)).bit_length())
    near, far = float(depth.min(initial=0.0)), float(depth.max(initial=1.0))
    levels = (1 << (_DEPTH_BITS - index_bits)) - 1
    quantised = ((depth - near) / max(far - near, 1e-12) * levels).astype(np.int64)
    keys = (quantised << index_bits) | np.arange(len(points), dtype=np.int64)
    buffer = np.full(width * height, np.iinfo(np.int64).max, np.int64)
    cols, rows = np.floor(cols).astype(np.int64), np.floor(rows).astype(np.int64)
    for radius in np.unique(radii):
        chosen = np.flatnonzero(radii == radius)
        for d_col, d_row in _disc(int(radius)):
            c, r = cols[chosen] + d_col, rows[chosen] + d_row
            inside = (c >= 0) & (c < width) & (r >= 0) & (r < height)
            np.minimum.at(buffer, r[inside] * width + c[inside], keys[chosen[inside]])
    hit = buffer != np.iinfo(np.int64).max
    index = np.where(hit, buffer & ((1 << index_bits) - 1), -1).reshape(height, width)
    seen = np.where(hit.reshape(height, width), depth[np.maximum(index, 0)], np.inf).astype(np.float32)
    if tolerance is not None:
        index, seen = _close_gaps(index, seen, tolerance, 2 * int(radii.max(initial=0)) + 3)
    return _fill_holes(index, seen)


def _fill_holes(index: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Background pixels enclosed by surface (between the lines of a line scanner) take the nearest surface pixel."""
    from scipy import ndimage

    hit = index >= 0
    if not hit.any():
        return index, depth
    enclosed = ndimage.binary_closing(hit, structure=np.ones((3, 3), bool), iterations=HOLE_PIXELS, border_value=0) & ~hit
    if not enclosed.any():
        return index, depth
    return _take_nearest(index, depth, enclosed, hit)


def _close_gaps(index: np.ndarray, depth: np.ndarray, tolerance: float, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels that see through a gap in a nearer surface take that surface's nearest pixel."""
    from scipy import ndimage

    finite = np.where(np.isfinite(depth), depth, np.inf)
    front = ndimage.minimum_filter(finite, size=window, mode="nearest")
    near_front = np.isfinite(finite) & (finite <= front + tolerance)
    share = ndimage.uniform_filter(near_front.astype(np.float32), size=window, mode="nearest")
    gap = np.isfinite(finite) & ~near_front & (share > HOLE_SHARE)
    if not gap.any():
        return index, depth
    return _take_nearest(index, depth, gap, near_front)


def _take_nearest(index: np.ndarray, depth: np.ndarray, targets: np.ndarray, sources: np.ndarray):
    """Copies of index and depth where each target pixel takes the values of its nearest source pixel."""
    from scipy import ndimage

    rows, cols = ndimage.distance_transform_edt(~sources, return_distances=False, return_indices=True)
    index, depth = index.copy(), depth.copy()
    index[targets], depth[targets] = index[rows[targets], cols[targets]], depth[rows[targets], cols[targets]]
    return index, depth


def _disc(radius: int) -> list[tuple[int, int]]:
    """Pixel offsets of a filled disc of the given radius."""
    span = np.arange(-radius, radius + 1)
    d_col, d_row = np.meshgrid(span, span)
    inside = d_col**2 + d_row**2 <= radius**2 + radius  # the "+ radius" rounds the disc's rim outwards
    return list(zip(d_col[inside].tolist(), d_row[inside].tolist(), strict=True))
