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

from tests.helpers import data  # noqa: E402
from tools.experts.series import detect  # noqa: E402
from tools.inputs.artifacts import load  # noqa: E402
from tools.render.camera import camera_for  # noqa: E402
from tools.render.cloud import preprocess, render_depth, render_shaded, render_views  # noqa: E402
from tools.render.series import render_series  # noqa: E402
from tools.render.video import render_frames  # noqa: E402


def cloud_examples(out: Path) -> list[Path]:
    """A dome-shaped part with a dent, scanned on a table (MVTec 3D-AD style), background removed."""
    grid = data.surface_grid(400, 400, defect="dent", noise=0.00005)
    points = preprocess(grid[(grid != 0).any(axis=2)], remove_background=True)
    camera = camera_for(points)
    images = {"cloud_depth.png": render_depth(points, camera), "cloud_shaded.png": render_shaded(points, camera),
              "cloud_views.png": render_views(points, camera, tile=320)}
    return [_save(image, out / name) for name, image in images.items()]


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
