"""Render one example per modality from generated data into docs/images/ (for the README).

    .venv/bin/python benchmarks/make_examples.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import data, scans  # noqa: E402
from tools.experts.series import detect  # noqa: E402
from tools.inputs.artifacts import load  # noqa: E402
from tools.render.camera import camera_for_references  # noqa: E402
from tools.render.cloud import render_shaded, render_views  # noqa: E402
from tools.render.series import render_series  # noqa: E402
from tools.render.video import render_frames  # noqa: E402


def cloud_examples(out: Path) -> list[Path]:
    """Two scans with a dent, each compared with reference scans by the 3-D expert.

    Organised: a dome on a table seen by an MVTec 3D-AD-style sensor (240 x 240 grid, the table
    removed because it dominates). Unordered: the new-user trial of issue 16, a ball sampled as
    50,000 points from all sides in a random pose, with a dent 1 % of its size deep.
    """
    from tools.experts.cloud.expert import CloudExpert
    from tools.experts.cloud.pictures import composite, deviation_paint
    from tools.experts.cloud.views import ScanView
    from tools.inputs.prepared import prepare

    written = []
    for name, references, query in (_organised_scans(), _unordered_scans()):
        clouds = [prepare(r) for r in references]
        scan = prepare(query)
        camera = camera_for_references([c.points for c in clouds]).for_cloud(scan.points)  # as the class's camera
        report = CloudExpert().fit(clouds).score(ScanView(scan, camera))
        paint = deviation_paint(report)
        written += [_save(render_shaded(scan, camera), out / f"cloud_{name}.png"),
                    _save(render_views(scan, camera, tile=320, paint=paint), out / f"cloud_{name}_views.png"),
                    _save(composite(report, scan, camera, report.reference_points), out / f"cloud_{name}_deviation.png")]
    return written


def _organised_scans():
    base, _ = scans.object_mesh("sphere")
    mesh, dent = scans.object_mesh("sphere", "dent", seed=2, facing=np.array([0, 0, 1.0]))
    grids = [scans.station_scan(base, None, seed=i).points for i in range(4)] + [scans.station_scan(mesh, dent, seed=9).points]
    flat = [g[(g != 0).any(axis=2)] for g in grids]
    return "organised", flat[:4], flat[4]


def _unordered_scans():
    base, _ = scans.object_mesh("sphere")
    mesh, dent = scans.object_mesh("sphere", "dent", seed=4)
    references = [scans.free_scan(base, None, seed=i, points=50_000).points for i in range(4)]
    return "unordered", references, scans.free_scan(mesh, dent, seed=9, points=50_000).points


def series_example(out: Path) -> Path:
    """Two sensors over eight days; a spike and a level shift in the first, flagged by the series expert."""
    frame = data.series_frame(8 * 96, columns=("temperature", "pressure"), spikes=((160, 2.5),),
                              level_shift=(530, 30, 1.6), period=96, noise=0.08, label=False).set_index("timestamp")
    report = detect(frame)
    image = render_series(frame, windows=[(w.start, w.end) for w in report.windows],
                          marks=[(p.row, p.column) for p in report.points], title="line 3 oven: flagged windows shaded",
                          width=1000)
    return _save(image, out / "series_plot.png")


def video_example(out: Path, folder: Path) -> Path:
    """A part passing on a conveyor, one frame with a foreign object: the frame grid catches it."""
    clip = load(data.write_video(folder / "conveyor.mp4", n=48, size=(320, 200), odd_frame=29, fps=12))
    return _save(render_frames(clip.payload, clip.extra["changes"], count=9, tile_width=256), out / "video_frames.png")


def _save(image, path: Path) -> Path:
    image.save(path, optimize=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    np.random.seed(0)
    with tempfile.TemporaryDirectory() as folder:
        written = cloud_examples(args.out) + [series_example(args.out), video_example(args.out, Path(folder))]
    for path in written:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
