"""Point cloud -> images a vision model can read: depth map, shaded relief, multi-view sheet.

Pre-processing uses open3d (statistical outlier removal, RANSAC background plane); rendering is
an orthographic projection with a numpy z-buffer (np.minimum.at), because open3d's offscreen
renderer needs Vulkan. Shading is computed from the depth image's gradients (screen-space
normals), so it needs no per-point normals and shows dents and bumps at any cloud size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from tools.render.camera import Camera, camera_for
from tools.render.imageops import font

BACKGROUND = (22, 24, 28)
SURFACE = np.array([214, 208, 196], np.float32)  # a light, neutral material
LIGHT = np.array([-0.45, 0.55, 0.70])  # from the upper left, towards the viewer (camera coordinates)
SHEET_VIEWS = (("top", 0.0, 90.0), ("front", 0.0, 15.0), ("side", 90.0, 15.0), ("oblique", 35.0, 40.0))


def preprocess(points: np.ndarray, *, remove_outliers: bool = True, remove_background: bool = False,
               max_points: int = 100_000, seed: int = 0) -> np.ndarray:
    """Points ready to render: thinned to max_points (voxel grid), outliers and optionally the plane removed.

    remove_background drops the dominant plane found by RANSAC (the table under an MVTec 3D-AD
    part); do not use it for flat parts, whose surface is the dominant plane.
    """
    points = voxel_downsample(np.asarray(points, np.float32), max_points, seed)
    if len(points) < 20:
        return points
    import open3d as o3d

    o3d.utility.random.seed(seed)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    if remove_background:
        threshold = 0.01 * float(np.linalg.norm(np.ptp(points, axis=0)))
        _, inliers = cloud.segment_plane(threshold, 3, 200)
        rest = cloud.select_by_index(inliers, invert=True)
        cloud = rest if len(rest.points) >= 20 else cloud
    if remove_outliers:
        cloud, _ = cloud.remove_statistical_outlier(nb_neighbors=8, std_ratio=3.0)
    return np.asarray(cloud.points, np.float32)


def voxel_downsample(points: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """At most max_points: one point per cell of a voxel grid sized for that count, then random if needed."""
    if len(points) <= max_points:
        return points
    rng = np.random.default_rng(seed)
    if len(points) > 2 * max_points:  # thin at random first: the voxel pass then sorts far fewer keys
        points = points[rng.random(len(points)) < 2 * max_points / len(points)]
    columns = np.ascontiguousarray(points.T)  # reductions along contiguous rows are several times faster
    low, high = columns.min(axis=1), columns.max(axis=1)
    extent = np.sort(high - low)[::-1]
    voxel = np.sqrt(max(float(extent[0] * extent[1]), 1e-18) / max_points)  # a surface fills ~ area / voxel^2
    cells = ((columns - low[:, None]) / voxel).astype(np.int64)
    dims = (high - low) / voxel + 1
    keys = (cells[0] * int(dims[1]) + cells[1]) * int(dims[2]) + cells[2]
    _, first = np.unique(keys, return_index=True)
    kept = points[np.sort(first)]
    if len(kept) > max_points:
        kept = kept[np.sort(rng.choice(len(kept), max_points, replace=False))]
    return kept


def depth_buffer(points: np.ndarray, camera: Camera) -> np.ndarray:
    """H x W depth (world units along the view, relative to the centre); inf where no point lands."""
    width, height = camera.size
    cols, rows, depth = camera.project(points)
    cols, rows = np.floor(cols).astype(np.int64), np.floor(rows).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    buffer = np.full(width * height, np.inf, np.float32)
    np.minimum.at(buffer, rows[inside] * width + cols[inside], depth[inside])
    return fill_holes(buffer.reshape(height, width), int(inside.sum()))


def fill_holes(depth: np.ndarray, count: int) -> np.ndarray:
    """Close the gaps between sparse points (nearest depth) without growing the silhouette."""
    hit = np.isfinite(depth)
    if count == 0 or not hit.any():
        return depth
    coarse = 8
    blocks = hit[: hit.shape[0] // coarse * coarse, : hit.shape[1] // coarse * coarse]
    area = blocks.reshape(blocks.shape[0] // coarse, coarse, -1, coarse).any(axis=(1, 3)).sum() * coarse**2
    gap = int(np.clip(np.ceil(np.sqrt(area / count)) + 1, 2, 12))  # spacing of points in pixels, plus one
    inside = ndimage.binary_closing(hit, structure=np.ones((3, 3), bool), iterations=gap, border_value=0)
    filled = depth.copy()
    for _ in range(gap):
        missing = inside & ~np.isfinite(filled)
        if not missing.any():
            break
        nearest = ndimage.minimum_filter(filled, size=3, mode="constant", cval=np.inf)
        filled[missing] = nearest[missing]
    return filled


def render_depth(points: np.ndarray, camera: Camera | None = None, *, colormap: str = "viridis",
                 legend: bool = True) -> Image.Image:
    """Depth map: near points bright, far points dark, on the camera's fixed depth range."""
    camera = camera or camera_for(points)
    depth = depth_buffer(points, camera)
    near, far = camera.depth_range
    closeness = np.clip((far - depth) / max(far - near, 1e-12), 0, 1)
    colours = _lut(colormap)[np.nan_to_num(closeness * 255, nan=0).astype(np.uint8)]
    colours[~np.isfinite(depth)] = BACKGROUND
    image = Image.fromarray(colours)
    return _with_depth_legend(image, colormap) if legend else image


def render_shaded(points: np.ndarray, camera: Camera | None = None, *, relief: float = 2.0,
                  smoothing: float | None = None) -> Image.Image:
    """Lambert-shaded relief from screen-space normals: dents and bumps show as light and shadow.

    relief exaggerates slopes (1 = true shape); smoothing (pixels) tames sensor noise, by default
    the spacing of the points on screen (finer detail than that is noise, not shape).
    """
    camera = camera or camera_for(points)
    depth = depth_buffer(points, camera)
    smoothing = smoothing if smoothing is not None else screen_spacing(depth, len(points))
    return Image.fromarray(shade(depth, camera.span / camera.size[0], relief, smoothing))


def screen_spacing(depth: np.ndarray, count: int) -> float:
    """Typical distance between neighbouring points on screen, in pixels (at least 1, at most 4)."""
    covered = int(np.isfinite(depth).sum())
    return float(np.clip(np.sqrt(covered / max(count, 1)), 1.0, 4.0))


def shade(depth: np.ndarray, pixel: float, relief: float = 2.0, smoothing: float = 1.0) -> np.ndarray:
    """RGB uint8 shading of a depth image whose pixels are `pixel` world units wide."""
    hit = np.isfinite(depth)
    if not hit.any():
        return np.broadcast_to(np.array(BACKGROUND, np.uint8), (*depth.shape, 3)).copy()
    indices = ndimage.distance_transform_edt(~hit, return_distances=False, return_indices=True)
    solid = depth[indices[0], indices[1]]  # background takes its nearest depth: no false edges
    if smoothing > 0:
        solid = ndimage.gaussian_filter(solid, smoothing)
    d_row, d_col = np.gradient(solid, pixel)
    normals = np.stack([d_col * relief, -d_row * relief, np.ones_like(solid)], axis=2)
    normals /= np.linalg.norm(normals, axis=2, keepdims=True)
    light = LIGHT / np.linalg.norm(LIGHT)
    lambert = np.clip(normals @ light, 0, 1)
    brightness = 0.18 + 0.82 * lambert
    colours = (SURFACE[None, None, :] * brightness[:, :, None]).clip(0, 255).astype(np.uint8)
    colours[~hit] = BACKGROUND
    return colours


def render_views(points: np.ndarray, camera: Camera | None = None, *, tile: int = 384,
                 relief: float = 2.0) -> Image.Image:
    """A 2 x 2 sheet of shaded views (top, front, side, oblique) at one common scale."""
    camera = (camera or camera_for(points)).resized(tile, tile)
    sheet = Image.new("RGB", (2 * tile, 2 * tile), BACKGROUND)
    draw, label_font = ImageDraw.Draw(sheet), font(max(12, tile // 24))
    for i, (label, azimuth, elevation) in enumerate(SHEET_VIEWS):
        view = camera.turned(azimuth, elevation)
        depth = depth_buffer(points, view)
        image = Image.fromarray(shade(depth, view.span / tile, relief, screen_spacing(depth, len(points))))
        x, y = (i % 2) * tile, (i // 2) * tile
        sheet.paste(image, (x, y))
        draw.text((x + 8, y + 6), label, fill=(240, 240, 240), font=label_font, stroke_width=2, stroke_fill=(0, 0, 0))
    draw.line((tile, 0, tile, 2 * tile), fill=(90, 90, 90), width=2)
    draw.line((0, tile, 2 * tile, tile), fill=(90, 90, 90), width=2)
    return sheet


def render_all(points: np.ndarray, camera: Camera | None = None, **preprocess_options) -> dict[str, Image.Image]:
    """Pre-process once, then the depth, shaded and multi-view images from one camera."""
    ready = preprocess(points, **preprocess_options)
    camera = camera or camera_for(ready)
    return {"depth": render_depth(ready, camera), "shaded": render_shaded(ready, camera),
            "views": render_views(ready, camera)}


def _lut(name: str) -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)



def _with_depth_legend(image: Image.Image, colormap: str) -> Image.Image:
    """A colour bar under the image, 'far' on the left and 'near' on the right."""
    width = image.width
    bar_height, pad = max(10, width // 40), max(4, width // 100)
    text_font = font(max(11, width // 36))
    out = Image.new("RGB", (width, image.height + bar_height + 3 * pad + text_font.size), BACKGROUND)
    out.paste(image, (0, 0))
    bar = np.repeat(_lut(colormap)[None, np.linspace(0, 255, width // 2).astype(int)], bar_height, axis=0)
    left = width // 4
    out.paste(Image.fromarray(bar), (left, image.height + pad))
    draw, text_y = ImageDraw.Draw(out), image.height + bar_height + 2 * pad
    draw.text((left, text_y), "far", fill=(230, 230, 230), font=text_font)
    draw.text((left + width // 2, text_y), "near", fill=(230, 230, 230), font=text_font, anchor="ra")
    draw.text((width // 2, text_y), "depth", fill=(170, 170, 170), font=text_font, anchor="ma")
    return out
