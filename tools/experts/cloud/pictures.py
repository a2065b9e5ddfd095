"""The 3-D expert's findings as pictures: deviation colours on the scan, the reference | query | deviation sheet,
and the same three seen facing one place (for the follow-ups' crops)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tools.inputs.prepared import PreparedCloud
from tools.render.camera import Camera
from tools.render.cloud import Paint, as_prepared, render_shaded

ABOVE = (225, 45, 35)  # red: above / outside the reference surface
BELOW = (40, 110, 235)  # blue: below / inside it
LACKING = (190, 60, 220)  # violet: reference surface the scan lacks
SELF_CHECK = (240, 150, 20)  # orange: stands out from the surface around it (no reference)
FADE_IN = (0.35, 0.75)  # scores between these fade from the surface's own colour to the full colour


def deviation_paint(report) -> Paint:
    """Paint for a CloudReport: red above, blue below the reference surface, violet where surface is lacking."""
    scores = np.asarray(report.point_scores, np.float32)
    weight = np.clip((scores - FADE_IN[0]) / (FADE_IN[1] - FADE_IN[0]), 0, 1)
    if report.evidence == "self-check":
        colours = np.broadcast_to(np.uint8(SELF_CHECK), (len(scores), 3)).copy()
        legend = ((SELF_CHECK, "stands out from the surface around it (no reference: weaker evidence)"),)
        return Paint(colours, weight, legend=legend)
    colours = np.where((np.asarray(report.deviation) >= 0)[:, None], np.uint8(ABOVE), np.uint8(BELOW)).astype(np.uint8)
    lacking_points, lacking_scores = report.lacking if report.lacking is not None else (np.empty((0, 3)), np.empty(0))
    shown = lacking_scores >= 0.5
    legend = ((ABOVE, "above the reference surface (bulge, extra material)"),
              (BELOW, "below the reference surface (dent)"),
              (LACKING, "reference surface the scan lacks (hole, missing part)"))
    return Paint(colours, weight, np.asarray(lacking_points)[shown],
                 np.broadcast_to(np.uint8(LACKING), (int(shown.sum()), 3)), legend)


def facing_camera(camera: Camera, cloud: PreparedCloud, centre) -> Camera:
    """The camera turned to look straight at a place (same scale), so a defect on the far side is seen."""
    centre = np.asarray(centre, np.float64)
    _, nearest = _nearest(cloud.points, centre)
    normal = cloud.normals[nearest].astype(np.float64)
    middle = np.asarray(cloud.points, np.float64).mean(axis=0)
    if np.dot(normal, centre - middle) < 0:
        normal = -normal  # look at the outside of the part
    helper = np.asarray(camera.up) if abs(np.dot(camera.up, normal)) < 0.9 else np.asarray(camera.basis()[0])
    up = helper - np.dot(helper, normal) * normal
    from dataclasses import replace

    turned = replace(camera, direction=tuple(float(v) for v in -normal), up=tuple(float(v) for v in up / np.linalg.norm(up)),
                     centre=tuple(float(v) for v in middle))
    return turned.for_cloud(cloud.points, whole=True)  # seen from another side the part may be wider than the view was


def is_seen(region, cloud: PreparedCloud, camera: Camera) -> bool:
    """Whether the region shows well in the view: on the near side and facing the viewer, not at the rim."""
    _, nearest = _nearest(cloud.points, np.asarray(region.centre, np.float64))
    normal = cloud.normals[nearest]
    if np.dot(normal, np.asarray(region.centre) - cloud.points.mean(axis=0)) < 0:
        normal = -normal
    return region.area > 0 and float(np.dot(normal, -np.asarray(camera.direction))) > 0.5


def composite(report, query: PreparedCloud, camera: Camera, reference_points: np.ndarray | None) -> Image.Image:
    """reference (aligned to the query) | query | deviation colours, seen from the query's camera or facing the region."""
    from tools.render.imageops import composite as side_by_side

    top = report.regions[0] if report.regions else None
    if top is None or is_seen(top, query, camera):
        seen = camera.for_cloud(query.points, whole=True)  # the evidence shows the whole part
    else:
        seen = facing_camera(camera, query, top.centre)
    panels = [(label, image) for label, image in _views(report, query, seen, reference_points)]
    panels[-1] = (f"{panels[-1][0]} (score {report.score:.2f})", panels[-1][1])
    return side_by_side(panels)


def place_views(report, query: PreparedCloud, camera: Camera, region: dict) -> tuple[tuple, list]:
    """(the place's box in these pictures, [(label, picture)]): the aligned reference, the query and the
    deviation colours seen facing a place given as a region dict (its 3-D centre and extent), at the view's size."""
    seen = facing_camera(camera, query, region["centre"])
    return _box_of(region, seen), _views(report, query, seen, report.reference_points, legend=False)


def _views(report, query: PreparedCloud, camera: Camera, reference_points, *, legend: bool = True) -> list:
    panels = []
    if reference_points is not None and len(reference_points):
        panels.append(("reference (aligned)", render_shaded(as_prepared(reference_points), camera)))
    panels.append(("query", render_shaded(query, camera)))
    label = "deviation" if report.evidence == "references" else "surface check"
    panels.append((label, render_shaded(query, camera, paint=deviation_paint(report), legend=legend)))
    return panels


def _box_of(region: dict, camera: Camera) -> tuple[float, float, float, float]:
    """The normalised box around a region's 3-D box (centre +- extent / 2) as the camera sees it."""
    from itertools import product

    centre = np.asarray(region["centre"], np.float64)
    half = np.asarray(region.get("extent") or (0.0, 0.0, 0.0), np.float64) / 2
    cols, rows, _ = camera.project(centre + half * np.array(list(product((-1, 1), repeat=3))))
    width, height = camera.size
    box = (cols.min() / width, rows.min() / height, cols.max() / width, rows.max() / height)
    return tuple(float(np.clip(v, 0, 1)) for v in box)


def _nearest(points: np.ndarray, centre: np.ndarray) -> tuple[float, int]:
    distances = np.linalg.norm(points - centre, axis=1)
    index = int(np.argmin(distances))
    return float(distances[index]), index
