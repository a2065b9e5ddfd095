"""Speed of the inputs layer on one core: renders, plots, frame sampling, loaders, refusals.

Reports the median wall time and the median CPU time of several runs (CPU time is the fairer
figure on a shared machine). Data is generated; nothing is downloaded.

    .venv/bin/python benchmarks/bench_render.py [--runs 5]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy and open3d load

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import data  # noqa: E402
from tools.errors import InputError  # noqa: E402
from tools.inputs.artifacts import load  # noqa: E402
from tools.render.camera import camera_for  # noqa: E402
from tools.render.cloud import preprocess, render_all, render_depth, render_shaded, render_views  # noqa: E402
from tools.render.series import render_series  # noqa: E402
from tools.render.video import render_frames  # noqa: E402


def timed(fn, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of fn() over runs (after one warm-up run)."""
    fn()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def refused(path: Path) -> None:
    try:
        load(path)
    except InputError:
        return
    raise AssertionError(f"{path} was not refused")


def cloud_cases(points: np.ndarray) -> dict:
    ready = preprocess(points)
    camera = camera_for(ready)
    return {
        "cloud 1M points -> depth + shaded + views (pre-processing included)": lambda: render_all(points),
        "  of which pre-processing (voxel to 100k, outlier removal)": lambda: preprocess(points),
        "  of which the three renders (100k points)": lambda: (render_depth(ready, camera),
                                                               render_shaded(ready, camera),
                                                               render_views(ready, camera)),
    }


def file_cases(folder: Path) -> dict:
    big_png = data.write_image(data.part_image((2048, 2048)), folder / "big.png")
    ply = data.write_cloud(data.surface_points(1_000_000, background=True), folder / "million.ply")
    frame = data.series_frame(1_000_000, columns=("a", "b"), freq="1s")
    csv, parquet = data.write_series(frame, folder / "million.csv"), data.write_series(frame, folder / "million.parquet")
    clip = data.write_video(folder / "clip.mp4", n=300, size=(640, 480), odd_frame=150, fps=30)
    huge = folder / "huge.ply"
    with huge.open("wb") as handle:
        handle.truncate(2 * 2**30)
    long_csv = folder / "long.csv"
    long_csv.write_bytes(b"value\n" + b"1\n" * 10_000_000)
    video = load(clip)
    return {
        "load PNG 2048 x 2048": lambda: load(big_png),
        "load PLY binary, 1M points": lambda: load(ply),
        "load CSV, 1M rows x 2 columns with timestamps": lambda: load(csv),
        "load Parquet, 1M rows x 2 columns": lambda: load(parquet),
        "load MP4 640 x 480, 300 frames (decode + keep 96 + changes)": lambda: load(clip),
        "video frame grid, 8 frames at scene changes": lambda: render_frames(video.payload, video.extra["changes"]),
        "refuse a 2 GB upload (os.stat)": lambda: refused(huge),
        "refuse a 10^7-row CSV (line count before parsing)": lambda: refused(long_csv),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    grid = data.surface_grid(1010, 1010, defect="dent")
    points = np.random.default_rng(0).permutation(grid[(grid != 0).any(axis=2)])[:1_000_000]
    series = data.series_frame(1_000_000, columns=("temperature",), spikes=((654_321, 5.0),), freq="1s",
                               label=False).set_index("timestamp")
    cases = {**cloud_cases(points), "series plot, 1M points (min-max decimation)": lambda: render_series(series)}
    with tempfile.TemporaryDirectory() as folder:
        cases.update(file_cases(Path(folder)))
        print(f"| case | wall median (s) | CPU median (s) |  \n|---|---:|---:|  ({args.runs} runs, one thread)")
        for name, fn in cases.items():
            wall, cpu = timed(fn, args.runs)
            print(f"| {name} | {wall:.3f} | {cpu:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
