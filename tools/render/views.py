"""The 2-D views of an artifact that the model and the vision expert see.

`VIEWS` maps a view name to a registered `View` (the kinds it applies to and its renderer); a new
view is added with `@register_view`, not with a branch. `to_image(artifact)` gives the default
view of each kind: the image itself, a shaded render, a plot, a frame grid.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tools.errors import InputError
from tools.inputs.artifacts import Artifact
from tools.render.camera import Camera, CameraStore, camera_for

DEFAULT_VIEWS = {"image": "image", "point_cloud": "shaded", "series": "plot", "video": "frames"}


@dataclass(frozen=True)
class View:
    """A named way to turn artifacts of some kinds into an image."""

    name: str
    kinds: tuple[str, ...]
    render: Callable[..., Image.Image]  # render(artifact, *, class_name, cache_dir, **options)
    description: str


VIEWS: dict[str, View] = {}


def register_view(name: str, kinds: tuple[str, ...], description: str):
    """Register a renderer as a view (decorator)."""

    def register(render: Callable[..., Image.Image]) -> Callable[..., Image.Image]:
        VIEWS[name] = View(name, kinds, render, description)
        return render

    return register


def views_for(kind: str) -> list[str]:
    """The view names that apply to an artifact kind, the default first."""
    names = [name for name, view in VIEWS.items() if kind in view.kinds]
    default = DEFAULT_VIEWS.get(kind)
    return sorted(names, key=lambda name: name != default)


def to_image(artifact: Artifact, view: str | None = None, *, class_name: str | None = None,
             cache_dir: str | Path | None = None, **options) -> Image.Image:
    """An artifact as an RGB image; clouds use the class's stored camera when class_name and cache_dir are given.

    options go to the renderer: remove_background (clouds), windows/marks/columns (plot),
    count/mode (frames).
    """
    name = view or DEFAULT_VIEWS[artifact.kind]
    chosen = VIEWS.get(name)
    if chosen is None or artifact.kind not in chosen.kinds:
        raise InputError(f"view {name!r} does not apply to a {artifact.kind.replace('_', ' ')}; "
                         f"use one of: {', '.join(views_for(artifact.kind))}")
    return chosen.render(artifact, class_name=class_name, cache_dir=cache_dir, **options)


# ---------------------------------------------------------------- point clouds
_PREPARED: OrderedDict[tuple, np.ndarray] = OrderedDict()
_PREPARED_LOCK = threading.Lock()


def prepared_points(artifact: Artifact, *, remove_background: bool = False) -> np.ndarray:
    """The artifact's points pre-processed for rendering (cached for the last few clouds)."""
    from tools.render.cloud import preprocess

    key = (artifact.sha256, remove_background)
    with _PREPARED_LOCK:
        if key in _PREPARED:
            _PREPARED.move_to_end(key)
            return _PREPARED[key]
    points = preprocess(artifact.payload, remove_background=remove_background)
    with _PREPARED_LOCK:
        _PREPARED[key] = points
        while len(_PREPARED) > 4:
            _PREPARED.popitem(last=False)
    return points


def camera_for_artifact(points: np.ndarray, class_name: str | None, cache_dir: str | Path | None) -> Camera:
    """The class's camera (fixed by its first reference) when both are given, else one for these points."""
    if class_name and cache_dir:
        return CameraStore(Path(cache_dir) / "cameras").get_or_set(class_name, points)
    return camera_for(points)


def _cloud_view(render_name: str):
    def render(artifact: Artifact, *, class_name=None, cache_dir=None, remove_background: bool = False) -> Image.Image:
        from tools.render import cloud as render_cloud
        points = prepared_points(artifact, remove_background=remove_background)
        camera = camera_for_artifact(points, class_name, cache_dir)
        return getattr(render_cloud, render_name)(points, camera)

    return render


register_view("shaded", ("point_cloud",), "relief shading that shows dents and bumps")(_cloud_view("render_shaded"))
register_view("depth", ("point_cloud",), "depth map, near bright, far dark")(_cloud_view("render_depth"))
register_view("views", ("point_cloud",), "top, front, side and oblique shaded views")(_cloud_view("render_views"))


# ---------------------------------------------------------------- other kinds
@register_view("image", ("image",), "the picture itself")
def _image(artifact: Artifact, **_) -> Image.Image:
    return artifact.payload.copy()


@register_view("plot", ("series",), "line plot, one panel per column, shared time axis")
def _plot(artifact: Artifact, *, class_name=None, cache_dir=None, **options) -> Image.Image:
    from tools.render.series import render_series

    options.setdefault("title", artifact.name)
    return render_series(artifact.payload, **options)


@register_view("frames", ("video",), "a grid of frames with their times")
def _frames(artifact: Artifact, *, class_name=None, cache_dir=None, count: int = 8, mode: str = "auto") -> Image.Image:
    from tools.render.video import render_frames

    return render_frames(artifact.payload, artifact.extra.get("changes"), count=count, mode=mode)
