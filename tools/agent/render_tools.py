"""Agent tools that show the model another view of an uploaded artifact.

Thin wrappers over tools/render/views.py and the renderers. Each takes the session context first
(`ctx.artifacts` maps artifact id -> Artifact) and returns text plus images. When the context
carries `class_name` and `cache_dir`, point clouds use the class's fixed camera.
"""

from __future__ import annotations

from typing import Literal

from tools.agent.fence import as_data
from tools.agent.registry import ToolResult, tool
from tools.errors import InputError, NotFoundError
from tools.inputs.artifacts import Artifact
from tools.render.imageops import check_box, zoom
from tools.render.views import to_image


def artifact_from(ctx, artifact_id: str, kind: str | None = None) -> Artifact:
    """The session's artifact with that id (or unique id prefix), optionally of one kind."""
    artifacts = getattr(ctx, "artifacts", None) or {}
    matches = [a for key, a in artifacts.items() if key == artifact_id or key.startswith(artifact_id)]
    if len(matches) != 1:
        known = ", ".join(f"{key} ({a.kind})" for key, a in artifacts.items()) or "none"
        raise NotFoundError(f"no single artifact with id {artifact_id!r}; known artifacts: {known}")
    if kind and matches[0].kind != kind:
        raise InputError(f"artifact {artifact_id} is {_a(matches[0].kind)}, not {_a(kind)}; pick an artifact of that kind")
    return matches[0]


def _a(kind: str) -> str:
    words = kind.replace("_", " ")
    return ("an " if words[0] in "aeiou" else "a ") + words


def _class_options(ctx) -> dict:
    return {"class_name": getattr(ctx, "class_name", None), "cache_dir": getattr(ctx, "cache_dir", None)}


@tool
def render_point_cloud(ctx, artifact_id: str, view: Literal["shaded", "depth", "views"] = "shaded",
                       remove_background: bool = False) -> ToolResult:
    """Render an uploaded point cloud as an image.

    Args:
        artifact_id: id of the point cloud artifact.
        view: shaded (relief lighting, shows dents and bumps), depth (colour = distance) or views (several sides).
        remove_background: always drop the dominant plane (by default it is dropped only when it is clearly a table around the part).
    """
    artifact = artifact_from(ctx, artifact_id, "point_cloud")
    image = to_image(artifact, view, remove_background=remove_background, **_class_options(ctx))
    return ToolResult(f"{view} render of {artifact.describe(as_model_data=True)}", images=[image], data={"view": view})


@tool
def plot_series(ctx, artifact_id: str, columns: list[str] | None = None, start: str | None = None,
                end: str | None = None, flag_anomalies: bool = True) -> ToolResult:
    """Plot an uploaded time series, optionally a time range, with the numeric expert's flagged windows.

    Args:
        artifact_id: id of the series artifact.
        columns: columns to plot (default: all, up to 8).
        start: first timestamp (or row number) to show; default the beginning.
        end: last timestamp (or row number) to show; default the end.
        flag_anomalies: run the series expert and shade the windows it flags.
    """
    from tools.experts.series import detect
    from tools.render.series import render_series

    artifact = artifact_from(ctx, artifact_id, "series")
    frame = _time_slice(artifact.payload, start, end)
    chosen = _columns(frame, columns)
    report = detect(frame[chosen]) if flag_anomalies else None
    windows = [(w.start, w.end) for w in report.windows] if report else []
    marks = [(p.row, p.column) for p in report.points] if report else []
    bands = report.bands if report else None
    image = render_series(frame, columns=chosen, windows=windows, marks=marks, title=artifact.name, bands=bands)
    findings = f"\n{as_data(report.summary(), 'evidence')}" if report else ""
    text = f"plot of {artifact.describe(as_model_data=True)}{findings}"
    data = {"score": report.score, "anomalous": report.anomalous} if report else {}
    return ToolResult(text, images=[image], data=data)


def _time_slice(frame, start: str | None, end: str | None):
    if start is None and end is None:
        return frame
    try:
        if frame.index.dtype.kind == "M":
            return frame.loc[start:end]
        rows = [int(v) if v is not None else None for v in (start, end)]
        return frame.iloc[rows[0]: None if rows[1] is None else rows[1] + 1]
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"start/end {start!r}..{end!r} do not fit this series' index; use timestamps "
                         "like 2024-01-01 12:00 or row numbers") from exc


def _columns(frame, columns: list[str] | None) -> list[str]:
    if len(frame) == 0:
        raise InputError("the chosen range holds no rows; widen start/end")
    unknown = [c for c in columns or [] if c not in frame.columns]
    if unknown:
        raise InputError(f"unknown column(s) {unknown}; the series has {list(frame.columns)}")
    return list(columns or frame.columns)


@tool
def sample_video_frames(ctx, artifact_id: str, count: int = 8,
                        mode: Literal["auto", "even", "scenes"] = "auto") -> ToolResult:
    """Show frames of an uploaded video as a grid, each labelled with its time.

    Args:
        artifact_id: id of the video artifact.
        count: how many frames to show (1 to 16).
        mode: even (spread over the video), scenes (where the picture changes most) or auto.
    """
    artifact = artifact_from(ctx, artifact_id, "video")
    if not 1 <= count <= 16:
        raise InputError(f"count must be between 1 and 16, got {count}")
    image = to_image(artifact, "frames", count=count, mode=mode)
    return ToolResult(f"{count} frames ({mode}) of {artifact.describe(as_model_data=True)}", images=[image])


@tool
def zoom_region(ctx, artifact_id: str, x0: float, y0: float, x1: float, y1: float) -> ToolResult:
    """Zoom into a region of an artifact's default view (image, shaded render, plot or frame grid).

    Args:
        artifact_id: id of the artifact.
        x0: left edge as a fraction of the width (0 to 1).
        y0: top edge as a fraction of the height (0 to 1).
        x1: right edge as a fraction of the width, larger than x0.
        y1: bottom edge as a fraction of the height, larger than y0.
    """
    box = check_box((x0, y0, x1, y1))
    artifact = artifact_from(ctx, artifact_id)
    image = zoom(to_image(artifact, **_class_options(ctx)), box)
    where = f"x {x0:.2f}-{x1:.2f}, y {y0:.2f}-{y1:.2f}"
    return ToolResult(f"zoom on {where} of {artifact.describe(as_model_data=True)}", images=[image])
