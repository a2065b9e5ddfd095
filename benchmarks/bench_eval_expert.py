"""`anomaly-chat eval` with the offline backend (the vision expert) on an MVTec-format set made from
real normal photographs. A benchmark, not a test.

    .venv/bin/python benchmarks/bench_eval_expert.py [--data ../shared/data] [--classes 13] [--limit 16]
        [--concurrency 2] [--shots 4] [--keep DIR]

It writes an MVTec AD tree: per class (12 VisA classes and the toy hazelnut, from their one real
normal photograph) 8 jittered copies in train/good, 8 more in test/good, and 8 jittered copies
with a pasted scratch, spot, missing piece or colour cast in test/<kind> with their masks in
ground_truth/ (tests/helpers/defects.py). Then it runs the real command, `anomaly-chat eval DIR
--format mvtec --shots 4 --strategies rules+reference+expert --backend offline`, in a fresh data
directory, and prints the analyses per second (wall time of the run, all cores) with the report's
mean ACC, AUROC, pixel AUROC and box hits. It runs twice in the same data directory: the first
run encodes every training normal it uses, the second finds their features in the cache (as any
later evaluation or inspection does). CPU seconds of the command are given beside the wall time,
because the machine's cores are shared. The same folder can be given to an older checkout's
command to compare.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from bench_expert import normal_photographs  # noqa: E402
from PIL import Image  # noqa: E402

from tests.helpers.defects import DEFECT_KINDS, add_defect, jitter  # noqa: E402


def write_mvtec(normals: dict[str, Image.Image], root: Path, per_split: int = 8) -> Path:
    """An MVTec AD tree of jittered real normals and pasted defects with masks; returns root."""
    for seed, (name, normal) in enumerate(normals.items()):
        base = 10_000 * (seed + 1)
        for i in range(per_split):
            _save(jitter(normal, base + i), root / name / "train" / "good" / f"{i:03d}.png")
            _save(jitter(normal, base + 100 + i), root / name / "test" / "good" / f"{i:03d}.png")
            kind = DEFECT_KINDS[i % len(DEFECT_KINDS)]
            image, mask = add_defect(jitter(normal, base + 200 + i), kind, base + 300 + i)
            _save(image, root / name / "test" / kind / f"{i:03d}.png")
            _save(Image.fromarray(mask.astype(np.uint8) * 255), root / name / "ground_truth" / kind / f"{i:03d}_mask.png")
    return root


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def run_eval(command: list[str], data: Path, out: Path, home: Path, args) -> tuple[float, float, dict]:
    """Run the eval command; (wall seconds, CPU seconds of the command, metrics of the one strategy)."""
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run([*command, "--home", str(home), "eval", str(data), "--format", "mvtec", "--shots", str(args.shots),
                    "--strategies", "rules+reference+expert", "--backend", "offline", "--concurrency",
                    str(args.concurrency), "--limit", str(args.limit), "--out", str(out), "--quiet"],
                   check=True, cwd=ROOT)
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    return seconds, cpu, next(iter(json.loads((out / "metrics.json").read_text()).values()))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--classes", type=int, default=13, help="how many of the development classes")
    parser.add_argument("--limit", type=int, default=16, help="test items per class")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--command", default=str(ROOT / ".venv" / "bin" / "anomaly-chat"))
    parser.add_argument("--runs", type=int, default=2, help="runs in one data directory (the first fills the cache)")
    parser.add_argument("--keep", type=Path, help="write the MVTec tree here (and reuse it) instead of a temp folder")
    args = parser.parse_args()
    normals = dict(list(normal_photographs(args.data).items())[:args.classes])
    if not normals:
        print(f"no development data at {args.data}; skipping")
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.keep or Path(tmp) / "mvtec"
        if not (data / next(iter(normals)) / "train").is_dir():
            write_mvtec(normals, data)
        for run in range(args.runs):  # later runs find the reference features in the data directory's cache
            seconds, cpu, table = run_eval(args.command.split(), data, Path(tmp) / f"out{run}", Path(tmp) / "home", args)
            analyses = table["pooled"]["n"]
            print(f"run {run + 1}: {analyses} analyses in {seconds:.1f} s wall ({analyses / seconds:.2f} analyses/s), "
                  f"{cpu:.1f} s CPU ({cpu / analyses:.3f} s CPU per analysis: {2 * analyses / cpu:.2f} analyses/s "
                  "on 2 free cores)")
    mean, pooled = table["mean"], table["pooled"]
    print(f"mean over classes: ACC {mean['acc']:.3f}, AUROC {mean['auroc']:.3f}; pooled pixel AUROC "
          f"{pooled.get('pixel_auroc', float('nan')):.3f}, box hits {pooled.get('box_hits', 0)}/{pooled.get('boxes_checked', 0)}")
    for name, values in table["per_class"].items():
        print(f"  {name}: ACC {values['acc']:.3f} AUROC {values['auroc'] or float('nan'):.3f} pixel AUROC "
              f"{values.get('pixel_auroc') or float('nan'):.3f} box hits {values.get('box_hits', 0)}/{values.get('boxes_checked', 0)}")


if __name__ == "__main__":
    main()
