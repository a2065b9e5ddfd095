"""The 2-D views of an artifact that the model and the vision expert see.

`VIEWS` maps a view name to a registered `View` (the kinds it applies to, its renderer, and what the
picture shows in the words the model is told); a new view is added with `@register_view`, not with
a branch. `to_image(artifact)` gives the default view of each kind: the image itself, a shaded
render, a plot, a frame grid. A point cloud's camera is fixed per class by its reference scans
(`fix_class_camera`, `reference_image`), never by a query.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tools.errors import InputError
from tools.inputs.artifacts import Artifact
from tools.inputs.prepared import PreparedCloud, prepare
from tools.render.camera import Camera, CameraStore, camera_for

DEFAULT_VIEWS = {"image": "image", "point_cloud": "shaded", "series": "plot", "video": "frames"}


@dataclass(frozen=True)
class View:
    """A named way to turn artifacts of some kinds into an image."""

    name: str
    kinds: tuple[str, ...]
    render: Callable[..., Image.Image]  # render(artifact, *, class_name, cache_dir, **options)
    description: str  # for people choosing a view
    shows: str  # what the picture is, in the words the model is told (prompts.TASK)


VIEWS: dict[str, View] = {}


def register_view(name: str, kinds: tuple[str, ...], description: str, shows: str):
    """Register a renderer as a view (decorator); `shows` is what the model is told the picture is."""

    def register(render: Callable[..., Image.Image]) -> Callable[..., Image.Image]:
        VIEWS[name] = View(name, kinds, render, description, shows)
        return render

    return register


def views_for(kind: str) -> list[str]:
    """The view names that apply to an artifact kind, the default first."""
    names = [name for name, view in VIEWS.items() if kind in view.kinds]
    default = DEFAULT_VIEWS.get(kind)
    return sorted(names, key=lambda name: name != default)


def default_view_shows(kind: str) -> str:
    """What the default view of a kind is, in the words the model is told: one source for prompt and picture."""
    return VIEWS[DEFAULT_VIEWS[kind]].shows


def to_image(artifact: Artifact, view: str | None = None, *, class_name: str | None = None,
             cache_dir: str | Path | None = None, **options) -> Image.Image:
    """An artifact as an RGB image; clouds use the class's stored camera when class_name and cache_dir are given.

    options go to the renderer: remove_background and show_deviation (clouds), windows/marks/columns
    (plot), count/mode (frames).
    """
    name = view or DEFAULT_VIEWS[artifact.kind]
    chosen = VIEWS.get(name)
    if chosen is None or artifact.kind not in chosen.kinds:
        raise InputError(f"view {name!r} does not apply to a {artifact.kind.replace('_', ' ')}; "
                         f"use one of: {', '.join(views_for(artifact.kind))}")
    return chosen.render(artifact, class_name=class_name, cache_dir=cache_dir, **options)


# ---------------------------------------------------------------- point clouds
_PREPARED: OrderedDict[tuple, PreparedCloud] = OrderedDict()
_PAINTS: OrderedDict[tuple, object] = OrderedDict()  # the 3-D expert's deviation colours per prepared scan
_CACHE_LOCK = threading.Lock()
_KEEP = 6


def prepared_cloud(artifact: Artifact, *, remove_background: bool = False) -> PreparedCloud:
    """The artifact's points prepared for rendering and comparison (tools/inputs/prepared.py), cached for recent clouds.

    The background plane goes when it is clearly a table around the part, or always with remove_background.
    """
    key = (artifact.sha256, bool(remove_background))
    with _CACHE_LOCK:
        if key in _PREPARED:
            _PREPARED.move_to_end(key)
            return _PREPARED[key]
    cloud = prepare(artifact.payload, colours=artifact.extra.get("colours"),
                    background="remove" if remove_background else "auto")
    _remember(_PREPARED, key, cloud)
    return cloud


def class_camera(cloud: PreparedCloud, class_name: str | None, cache_dir: str | Path | None) -> Camera:
    """The camera the class's reference scans fixed, when there is one; else a camera framing this cloud (not stored)."""
    if class_name and cache_dir:
        stored = CameraStore(Path(cache_dir) / "cameras").get(class_name)
        if stored is not None:
            return stored.for_cloud(cloud.points)
    return camera_for(cloud.points)


def fix_class_camera(class_name: str | None, cache_dir: str | Path | None, references: list[Artifact]) -> None:
    """Let reference scans fix their class's camera (once; a query never does)."""
    clouds = [a for a in references if a.kind == "point_cloud"]
    if class_name and cache_dir and clouds:
        CameraStore(Path(cache_dir) / "cameras").fix(class_name, [prepared_cloud(a).points for a in clouds])


def reference_image(artifact: Artifact, *, class_name: str | None = None, cache_dir: str | Path | None = None) -> Image.Image:
    """The default view of a file stored or given as a reference normal (a reference scan may fix the class's camera)."""
    fix_class_camera(class_name, cache_dir, [artifact])
    return to_image(artifact, class_name=class_name, cache_dir=cache_dir)


def set_deviation_paint(artifact: Artifact, paint, *, remove_background: bool = False) -> None:
    """Colour this scan's renders by the 3-D expert's deviation from now on (in every cloud view)."""
    _remember(_PAINTS, (artifact.sha256, bool(remove_background)), paint)


def _remember(cache: OrderedDict, key: tuple, value) -> None:
    with _CACHE_LOCK:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _KEEP:
            cache.popitem(last=False)


def _cloud_view(render_name: str):
    def render(artifact: Artifact, *, class_name=None, cache_dir=None, remove_background: bool = False,
               show_deviation: bool = True) -> Image.Image:
        from tools.render import cloud as render_cloud

        cloud = prepared_cloud(artifact, remove_background=remove_background)
        paint = _PAINTS.get((artifact.sha256, bool(remove_background))) if show_deviation else None
        return getattr(render_cloud, render_name)(cloud, class_camera(cloud, class_name, cache_dir), paint=paint)

    return render


register_view("shaded", ("point_cloud",), "relief shading that shows dents and bumps",
              "shaded render of a 3-D scan (light and shadow show the shape: dents and bumps appear as "
              "shading; colours, if any, are the scan's own or, where a legend says so, deviation from normal)"
              )(_cloud_view("render_shaded"))
register_view("depth", ("point_cloud",), "depth map, near bright, far dark",
              "depth image of a 3-D scan (colour = distance from the viewer: bright/yellow is near, dark is far)"
              )(_cloud_view("render_depth"))
register_view("views", ("point_cloud",), "shaded views from several sides (four, or six for a scan from all sides)",
              "sheet of shaded renders of a 3-D scan from several sides, each tile labelled (light and shadow show the shape)"
              )(_cloud_view("render_views"))


# ---------------------------------------------------------------- other kinds
@register_view("image", ("image",), "the picture itself", "image")
def _image(artifact: Artifact, **_) -> Image.Image:
    return artifact.payload.copy()


@register_view("plot", ("series",), "line plot, one panel per column, shared time axis",
               "plot of a sensor time series (shaded bands, if any, mark windows a numeric detector flagged)")
def _plot(artifact: Artifact, *, class_name=None, cache_dir=None, **options) -> Image.Image:
    from tools.render.series import render_series

    options.setdefault("title", artifact.name)
    return render_series(artifact.payload, **options)


@register_view("frames", ("video",), "a grid of frames with their times",
               "grid of video frames (time stamps on each tile, read left to right, top to bottom)")
def _frames(artifact: Artifact, *, class_name=None, cache_dir=None, count: int = 8, mode: str = "auto") -> Image.Image:
    from tools.render.video import render_frames

    return render_frames(artifact.payload, artifact.extra.get("changes"), count=count, mode=mode)
