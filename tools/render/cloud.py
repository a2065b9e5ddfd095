"""Point cloud -> images a person and a vision model can read: shaded relief, depth map, multi-view sheet.

The cloud is first prepared once (tools/inputs/prepared.py: thinned, outliers and a dominating
table removed). Each point is drawn as a disc sized from its local spacing into a numpy z-buffer
(tools/render/splat.py), and lit with its own normal estimated from its 20 nearest neighbours
(open3d), so a sparse, noisy or unordered cloud renders as a smooth surface on which dents and
bumps show as light and shadow. A cloud's own colours are kept (the surface is lit, not
repainted). A `Paint` colours points by a per-point value, such as the 3-D expert's deviation from
the reference surface, on every view, and may add "ghost" points where the reference has surface
the scan lacks (a missing part).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from tools.inputs.prepared import PreparedCloud, prepare
from tools.render.camera import Camera, camera_for
from tools.render.imageops import font
from tools.render.splat import splat_radii, visible_points

BACKGROUND = (22, 24, 28)
SURFACE = np.array([214, 208, 196], np.float32)  # a light, neutral material
LIGHT = np.array([-0.45, 0.55, 0.70])  # from the upper left, towards the viewer (camera coordinates)
AMBIENT = 0.2
SHEET_VIEWS = (("top", 0.0, 90.0), ("front", 0.0, 15.0), ("side", 90.0, 15.0), ("oblique", 35.0, 40.0))
ALL_SIDES = (("top", 0.0, 90.0), ("front", 0.0, 0.0), ("right", 90.0, 0.0),
             ("bottom", 0.0, -90.0), ("back", 180.0, 0.0), ("left", 270.0, 0.0))  # a scan from all sides
ROUND_SAMPLE = 2000
ONE_SIDE_MEAN = 0.35  # consistent normals of a scan of one side add up to at least this (of a sphere's half: 0.5)


@dataclass
class Paint:
    """Colours laid over a cloud's points: per-point RGB and weight (0 = the surface as it is, 1 = the colour).

    ghost_points (K x 3) are drawn, lit, in ghost_colours where the cloud itself has no surface;
    legend lists (RGB, words) for the strip under the image.
    """

    colours: np.ndarray  # uint8 (M, 3)
    weight: np.ndarray  # float32 (M,)
    ghost_points: np.ndarray | None = None
    ghost_colours: np.ndarray | None = None
    legend: tuple = ()


def as_prepared(cloud: PreparedCloud | np.ndarray) -> PreparedCloud:
    """A PreparedCloud as it is; plain points are wrapped without further cleaning."""
    if isinstance(cloud, PreparedCloud):
        return cloud
    points = np.asarray(cloud, np.float32)
    return PreparedCloud(points, np.arange(len(points)))


def preprocess(points: np.ndarray, *, remove_outliers: bool = True, remove_background: bool | None = None,
               max_points: int = 100_000, seed: int = 0) -> np.ndarray:
    """Points ready to render (see tools/inputs/prepared.py); remove_background None = when it dominates."""
    background = {None: "auto", True: "remove", False: "keep"}[remove_background]
    return prepare(points, max_points=max_points, remove_outliers=remove_outliers, background=background,
                   seed=seed).points


def render_shaded(cloud, camera: Camera | None = None, *, relief: float = 2.0, paint: Paint | None = None,
                  legend: bool = True) -> Image.Image:
    """Lambert-shaded relief from per-point normals: dents and bumps show as light and shadow.

    relief exaggerates slopes seen from the camera (1 = true shape).
    """
    cloud = as_prepared(cloud)
    camera = camera or camera_for(cloud.points)
    image = Image.fromarray(_shaded_pixels(cloud, camera, relief, paint))
    return _with_paint_legend(image, paint) if legend and paint is not None and paint.legend else image


def render_depth(cloud, camera: Camera | None = None, *, colormap: str = "viridis", legend: bool = True,
                 paint: Paint | None = None) -> Image.Image:
    """Depth map: near points bright, far points dark, on the camera's fixed depth range."""
    cloud = as_prepared(cloud)
    camera = camera or camera_for(cloud.points)
    index, depth = _visible(cloud, camera, paint)
    near, far = camera.depth_range
    closeness = np.clip((far - depth) / max(far - near, 1e-12), 0, 1)
    colours = _lut(colormap)[np.nan_to_num(closeness * 255, nan=0).astype(np.uint8)].astype(np.float32)
    colours = _painted(colours, index, len(cloud.points), paint, np.ones(index.shape, np.float32))
    colours[index < 0] = BACKGROUND
    image = Image.fromarray(colours.astype(np.uint8))
    return _with_depth_legend(image, colormap) if legend else image


def render_views(cloud, camera: Camera | None = None, *, tile: int = 384, relief: float = 2.0,
                 paint: Paint | None = None) -> Image.Image:
    """A sheet of shaded views at one common scale: top, front, side and oblique for a scan of one side,
    all six sides (3 x 2) for a scan from all sides, so that no side of a closed part is left unseen."""
    cloud = as_prepared(cloud)
    camera = (camera or camera_for(cloud.points)).resized(tile, tile)
    views = ALL_SIDES if scanned_all_round(cloud) else SHEET_VIEWS
    columns = 3 if len(views) == 6 else 2
    sheet = Image.new("RGB", (columns * tile, 2 * tile), BACKGROUND)
    draw, label_font = ImageDraw.Draw(sheet), font(max(12, tile // 24))
    for i, (label, azimuth, elevation) in enumerate(views):
        x, y = (i % columns) * tile, (i // columns) * tile
        sheet.paste(Image.fromarray(_shaded_pixels(cloud, camera.turned(azimuth, elevation), relief, paint)), (x, y))
        draw.text((x + 8, y + 6), label, fill=(240, 240, 240), font=label_font, stroke_width=2, stroke_fill=(0, 0, 0))
    for column in range(1, columns):
        draw.line((column * tile, 0, column * tile, 2 * tile), fill=(90, 90, 90), width=2)
    draw.line((0, tile, columns * tile, tile), fill=(90, 90, 90), width=2)
    return _with_paint_legend(sheet, paint) if paint is not None and paint.legend else sheet


def scanned_all_round(cloud: PreparedCloud) -> bool:
    """Whether the scan shows the part from all sides: made consistent, its normals point every way (they
    cancel out), while a scan of one side has them mostly facing the sensor. Decided on a small sample."""
    from tools.inputs.prepared import estimate_normals, open3d_cloud, sensor_at_origin, voxel_downsample

    if sensor_at_origin(cloud.points) or len(cloud.points) < 50:
        return False
    sample = cloud.points[voxel_downsample(cloud.points, ROUND_SAMPLE)]
    oriented = open3d_cloud(sample, estimate_normals(sample))
    try:
        oriented.orient_normals_consistent_tangent_plane(8)
    except RuntimeError:
        return False
    return float(np.linalg.norm(np.asarray(oriented.normals).mean(axis=0))) < ONE_SIDE_MEAN


def render_all(points: np.ndarray, camera: Camera | None = None, **prepare_options) -> dict[str, Image.Image]:
    """Prepare once, then the depth, shaded and multi-view images from one camera."""
    ready = prepare(points, **prepare_options)
    camera = camera or camera_for(ready.points)
    return {"depth": render_depth(ready, camera), "shaded": render_shaded(ready, camera),
            "views": render_views(ready, camera)}


def seen_points(cloud, camera: Camera, extra_points: np.ndarray | None = None) -> np.ndarray:
    """H x W index of the point seen at each pixel as the shaded view shows it (-1: none).

    extra_points (for example reference surface the scan lacks) are drawn into the same z-buffer and
    numbered after the cloud's own points.
    """
    cloud = as_prepared(cloud)
    paint = None if extra_points is None or not len(extra_points) else \
        Paint(np.zeros((len(cloud.points), 3), np.uint8), np.zeros(len(cloud.points), np.float32), extra_points)
    return _visible(cloud, camera, paint)[0]


# ---------------------------------------------------------------- internals
def _visible(cloud: PreparedCloud, camera: Camera, paint: Paint | None) -> tuple[np.ndarray, np.ndarray]:
    """The z-buffer of the cloud's points (and a paint's ghost points, indexed after them)."""
    points, radii = cloud.points, splat_radii(cloud.spacing, camera)
    ghost = None if paint is None else paint.ghost_points
    if ghost is not None and len(ghost):
        points = np.vstack([points, np.asarray(ghost, np.float32)])
        radii = np.concatenate([radii, np.full(len(ghost), max(1, int(np.median(radii))), np.int64)])
    return visible_points(points, camera, radii, tolerance=4 * float(np.median(cloud.spacing)))


def _shaded_pixels(cloud: PreparedCloud, camera: Camera, relief: float, paint: Paint | None) -> np.ndarray:
    index, _ = _visible(cloud, camera, paint)
    normals = cloud.normals
    ghost = None if paint is None else paint.ghost_points
    if ghost is not None and len(ghost):
        from tools.inputs.prepared import estimate_normals

        normals = np.vstack([normals, estimate_normals(np.asarray(ghost, np.float32))])
    brightness = _lambert(normals, index, camera, relief)
    base = SURFACE if cloud.colours is None else None
    colours = np.broadcast_to(base, (*index.shape, 3)).astype(np.float32) if base is not None else \
        _own_colours(cloud.colours, index, paint)
    colours = _painted(colours, index, len(cloud.points), paint, brightness)
    colours *= brightness[:, :, None]
    colours[index < 0] = BACKGROUND
    return colours.clip(0, 255).astype(np.uint8)


def _lambert(normals: np.ndarray, index: np.ndarray, camera: Camera, relief: float) -> np.ndarray:
    """Brightness per pixel from the visible points' normals, turned towards the viewer and lightly smoothed."""
    right, up, forward = camera.basis()
    hit = index >= 0
    seen = normals[np.maximum(index, 0)].astype(np.float32)
    screen = np.stack([seen @ right.astype(np.float32), seen @ up.astype(np.float32),
                       -(seen @ forward.astype(np.float32))], axis=2)
    screen *= np.where(screen[:, :, 2:] < 0, -1.0, 1.0)  # two-sided: a normal always faces the viewer
    screen[:, :, :2] *= relief
    screen = _smooth_within(screen, hit, 0.8)
    screen /= np.maximum(np.linalg.norm(screen, axis=2, keepdims=True), 1e-9)
    lambert = np.clip(screen @ (LIGHT / np.linalg.norm(LIGHT)).astype(np.float32), 0, 1)
    return (AMBIENT + (1 - AMBIENT) * lambert).astype(np.float32)


def _smooth_within(values: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of an H x W x C image that averages only over the pixels in mask."""
    weight = ndimage.gaussian_filter(mask.astype(np.float32), sigma)
    smoothed = np.stack([ndimage.gaussian_filter(values[:, :, c] * mask, sigma) for c in range(values.shape[2])], axis=2)
    return np.where(mask[:, :, None], smoothed / np.maximum(weight, 1e-6)[:, :, None], values)


def _own_colours(colours: np.ndarray, index: np.ndarray, paint: Paint | None) -> np.ndarray:
    """The scan's own colours at each pixel (ghost points take the neutral material)."""
    table = colours.astype(np.float32)
    if paint is not None and paint.ghost_points is not None and len(paint.ghost_points):
        table = np.vstack([table, np.broadcast_to(SURFACE, (len(paint.ghost_points), 3))])
    return table[np.maximum(index, 0)] * 1.15  # the light scales down; keep the scan's colours as bright


def _painted(colours: np.ndarray, index: np.ndarray, count: int, paint: Paint | None,
             brightness: np.ndarray) -> np.ndarray:
    """Colours with the paint blended in (divided by the brightness that is applied afterwards, so hues stay clear)."""
    if paint is None:
        return colours
    rgb = paint.colours.astype(np.float32)
    weight = np.asarray(paint.weight, np.float32)
    if paint.ghost_points is not None and len(paint.ghost_points):
        rgb = np.vstack([rgb, np.asarray(paint.ghost_colours, np.float32)])
        weight = np.concatenate([weight, np.ones(len(paint.ghost_points), np.float32)])
    seen = np.maximum(index, 0)
    w = np.where(index >= 0, weight[seen], 0.0)[:, :, None]
    lift = 0.45 + 0.55 * brightness[:, :, None]  # painted places keep some shading but stay readable in shadow
    return colours * (1 - w) + rgb[seen] * lift / np.maximum(brightness[:, :, None], 1e-3) * w


def _lut(name: str) -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def _legend_canvas(image: Image.Image, rows: int) -> tuple[Image.Image, ImageDraw.ImageDraw, object, int]:
    width = image.width
    text_font = font(max(11, width // 36))
    line = text_font.size + max(4, width // 100)
    out = Image.new("RGB", (width, image.height + rows * line + line // 2), BACKGROUND)
    out.paste(image, (0, 0))
    return out, ImageDraw.Draw(out), text_font, line


def _with_paint_legend(image: Image.Image, paint: Paint) -> Image.Image:
    """One line per legend entry under the image: a colour swatch and its meaning."""
    out, draw, text_font, line = _legend_canvas(image, len(paint.legend))
    for i, (colour, words) in enumerate(paint.legend):
        y = image.height + line // 4 + i * line
        draw.rectangle((8, y + 2, 8 + line - 6, y + line - 4), fill=tuple(int(c) for c in colour))
        draw.text((8 + line, y), words, fill=(230, 230, 230), font=text_font)
    return out


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
