"""The 3-D expert run on artifacts: prepared like their renders, seen through the query view's camera.

`inspect_scan` is what the evidence step calls for a point cloud: it fits the reference model on
the reference scans (or, with none, runs the self-check), scores the query, puts the deviation
colours on the query's renders and makes the reference | query | deviation picture.
"""

from __future__ import annotations

from pathlib import Path

from tools.experts.cloud.expert import CloudExpert, self_check
from tools.experts.cloud.pictures import composite, deviation_paint
from tools.experts.cloud.report import CloudReport
from tools.experts.cloud.views import ScanView
from tools.inputs.artifacts import Artifact
from tools.render.views import class_camera, prepared_cloud, set_deviation_paint


def scan_view(query: Artifact, image_size: tuple[int, int] | None, class_name: str | None,
              cache_dir: Path | None) -> ScanView:
    """The query prepared as its view renders it, with that view's camera (at image_size) and, for a grid, its cells."""
    cloud = prepared_cloud(query)
    camera = class_camera(cloud, class_name, cache_dir)
    camera = camera.resized(*image_size) if image_size else camera
    return ScanView(cloud, camera, query.payload, query.extra.get("valid"))


def inspect_scan(query: Artifact, references: list[Artifact], *, image_size: tuple[int, int] | None = None,
                 class_name: str | None = None, cache_dir: Path | None = None) -> tuple[CloudReport, object]:
    """(report, reference | query | deviation picture) for a query scan and its reference scans (may be none)."""
    scan = scan_view(query, image_size, class_name, cache_dir)
    clouds = [a for a in references if a.kind == "point_cloud"]
    if clouds:
        expert = CloudExpert(cache_dir=cache_dir).fit([prepared_cloud(a) for a in clouds], [a.sha256 for a in clouds])
        report = expert.score(scan)
    else:
        report = self_check(scan)
    set_deviation_paint(query, deviation_paint(report))
    return report, composite(report, scan.cloud, scan.camera, report.reference_points)
