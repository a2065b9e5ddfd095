"""Quality and speed of the vision expert (tools/experts/vision/expert.py). A benchmark, not a test.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_expert.py [--data ../shared/data]
        [--per-class 10] [--backbones auto,combined] [--matchings auto] [--sections synthetic,real,turned,speed]
        [--mvtec DIR] [--out FILE]

Sections (each skipped when its data is absent):
- synthetic: per real normal photograph (12 VisA classes, hazelnut), references and test
  normals are jittered copies (pose, lighting, noise); test anomalies are jittered copies with a
  pasted scratch, spot, missing piece or colour change (tests/helpers/defects.py). Image and
  pixel AUROC, and how many normals/anomalies the calibrated threshold flags, 1 and 4 references.
- real: the real VisA anomaly photographs against the class's real normal photograph as the one
  reference, with jittered copies of that normal as the normal test images; the chewinggum
  class also has a second real normal photograph. The hazelnut photos with masks: pixel AUROC.
- turned: the synthetic set with every reference and test image turned by a random angle (parts
  that lie at any angle): position and free matching, with and without turned references.
- mvtec: an MVTec-AD-format folder, if given: the real protocol (k train/good references, all test images).
- speed: fitting four 900 x 900 references and scoring one 900 x 900 query, on one thread
  (medians of --speed-runs fits from scratch and of 5 queries; CPU seconds of the process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from tests.helpers.defects import DEFECT_KINDS, add_defect, jitter  # noqa: E402
from tools.experts.vision import expert as expert_module  # noqa: E402
from tools.experts.vision.expert import VisionExpert  # noqa: E402

LONG_SIDE = 900  # photographs are brought to about the size the app sees
METRICS = ("image_auroc", "acc", "pixel_auroc", "box_hits", "normals_flagged", "anomalies_flagged")


def load(path: Path, mode: str = "RGB") -> Image.Image:
    image = Image.open(path).convert(mode)
    image.thumbnail((LONG_SIDE, LONG_SIDE), Image.BILINEAR)
    return image


def normal_photographs(data: Path) -> dict[str, Image.Image]:
    """One real normal photograph per class."""
    found = {folder.parent.name: load(sorted(folder.iterdir())[0])
             for folder in sorted((data / "visa_samples").glob("*/normal"))}
    if (data / "hazelnut_toy" / "good.jpg").is_file():
        found["hazelnut_toy"] = load(data / "hazelnut_toy" / "good.jpg")
    return found


def synthetic_set(normal: Image.Image, count: int, seed: int):
    """Four jittered references, then (image, label, mask) test samples: half normal, half defective."""
    references = [jitter(normal, seed + i) for i in range(4)]
    samples = []
    for i in range(count):
        samples.append((jitter(normal, seed + 100 + i), 0, None))
        defective, mask = add_defect(jitter(normal, seed + 200 + i), DEFECT_KINDS[i % 4], seed + 300 + i)
        samples.append((defective, 1, mask))
    return references, samples


def evaluate(expert: VisionExpert, samples) -> dict:
    """Image AUROC, ACC and flag rates at the calibrated threshold, pixel AUROC and box hits (where masks exist)."""
    reports = [expert.score(image) for image, _, _ in samples]
    labels = np.array([label for _, label, _ in samples])
    raw = np.array([r.raw_score for r in reports])
    flagged = np.array([r.anomalous for r in reports])
    result = {"image_auroc": roc_auc_score(labels, raw) if 0 < labels.sum() < len(labels) else float("nan"),
              "acc": float(np.mean(flagged == labels.astype(bool))),
              "normals_flagged": flagged[labels == 0].mean(), "anomalies_flagged": flagged[labels == 1].mean()}
    masked = [(r.heatmap, m if m is not None else np.zeros(r.heatmap.shape, bool))
              for r, (_, label, m) in zip(reports, samples, strict=True)]
    if any(m.any() for _, m in masked):
        result["pixel_auroc"] = pixel_auroc(masked)
        hits = [box_hit(r, m) for r, (_, label, m) in zip(reports, samples, strict=True)
                if label and m is not None and r.anomalous and r.regions]
        result["box_hits"] = float(np.mean(hits)) if hits else float("nan")
    return result


def box_hit(report, mask: np.ndarray) -> bool:
    """True when the strongest region's box covers a defect pixel."""
    x0, y0, x1, y1 = report.regions[0].box
    h, w = mask.shape
    return bool(mask[int(y0 * h):int(np.ceil(y1 * h)) + 1, int(x0 * w):int(np.ceil(x1 * w)) + 1].any())


def pixel_auroc(pairs) -> float:
    """Pixel AUROC over heatmap/mask pairs, at 1/4 of the resolution (the heatmap is smooth anyway)."""
    heat = np.concatenate([h[::4, ::4].ravel() for h, _ in pairs])
    truth = np.concatenate([m[::4, ::4].ravel() for _, m in pairs])
    return float(roc_auc_score(truth, heat))


def run_synthetic(normals, configs, per_class: int) -> list[dict]:
    rows = []
    for seed, (name, normal) in enumerate(normals.items()):
        references, samples = synthetic_set(normal, per_class, 1000 * seed)
        for config in configs:
            for shots in (1, 4):
                expert = VisionExpert(config["backbone"], matching=config["matching"]).fit(references[:shots])
                rows.append({"class": name, **config, "shots": shots, **evaluate(expert, samples)})
        print(f"  synthetic {name} done", file=sys.stderr)
    return rows


def run_real_visa(data: Path, normals, configs, per_class: int) -> list[dict]:
    """Real anomalies vs jittered copies of the class's one normal photograph (1 reference)."""
    rows = []
    for folder in sorted((data / "visa_samples").glob("*/anomaly")):
        name = folder.parent.name
        normal_files = sorted((folder.parent / "normal").iterdir())
        samples = [(jitter(normals[name], 5000 + i), 0, None) for i in range(per_class)]
        samples += [(load(f), 0, None) for f in normal_files[1:]]  # a second real normal, if any
        samples += [(load(f), 1, None) for f in sorted(folder.iterdir())]
        for config in configs:
            expert = VisionExpert(config["backbone"], matching=config["matching"]).fit([normals[name]])
            rows.append({"class": name, **config, "shots": 1, "real_normals": len(normal_files) - 1,
                         "real_anomalies": len(list(folder.iterdir())), **evaluate(expert, samples)})
    return rows


def run_hazelnut(data: Path, configs) -> list[dict]:
    """The toy hazelnut: good.jpg is the reference; colour.jpg and crack.jpg have masks."""
    folder = data / "hazelnut_toy"
    if not folder.is_dir():
        return []
    good = load(folder / "good.jpg")
    samples = [(jitter(good, 7000 + i), 0, None) for i in range(6)]
    for name in ("colour", "crack"):
        samples.append((load(folder / f"{name}.jpg"), 1, np.asarray(load(folder / f"{name}_mask.jpg", "L")) > 127))
    rows = []
    for config in configs:
        for rotation in (False, True):
            expert = VisionExpert(config["backbone"], matching=config["matching"], rotation_invariant=rotation)
            rows.append({"class": "hazelnut_toy", **config, "rotation_invariant": rotation,
                         **evaluate(expert.fit([good]), samples)})
    return rows


def run_mvtec(root: Path, configs, limit: int) -> list[dict]:
    """MVTec AD layout: <class>/train/good, <class>/test/<kind>, <class>/ground_truth/<kind>/*_mask.png."""
    rows = []
    for class_dir in sorted(p for p in root.iterdir() if (p / "train" / "good").is_dir()):
        train = sorted((class_dir / "train" / "good").glob("*.png"))
        tests = sorted((class_dir / "test").glob("*/*.png"))
        tests = [tests[i] for i in np.linspace(0, len(tests) - 1, min(limit, len(tests))).astype(int)]
        samples = [(load(p), int(p.parent.name != "good"), mvtec_mask(class_dir, p)) for p in tests]
        settings = SEED_SETTINGS.get(class_dir.name, {})  # what the app would use for this class
        for config in configs:
            for shots in (1, 4):
                picks = [load(train[i]) for i in np.linspace(0, len(train) - 1, shots).astype(int)]
                matching = settings.get("matching", "auto") if config["matching"] == "auto" else config["matching"]
                expert = VisionExpert(config["backbone"], matching=matching,
                                      rotation_invariant=bool(settings.get("rotation_invariant", False)))
                rows.append({"class": class_dir.name, **config, "shots": shots, **evaluate(expert.fit(picks), samples)})
    return rows


def seed_settings() -> dict[str, dict]:
    """The expert settings of every seeded class (knowledge/seed/*.json): matching and rotation."""
    found = {}
    for path in sorted((ROOT / "knowledge" / "seed").glob("*.json")):
        for name, entry in json.loads(path.read_text()).get("classes", {}).items():
            found[name] = entry.get("settings", {})
    return found


SEED_SETTINGS = seed_settings()


def mvtec_mask(class_dir: Path, path: Path):
    mask_path = class_dir / "ground_truth" / path.parent.name / f"{path.stem}_mask.png"
    return np.asarray(load(mask_path, "L")) > 127 if mask_path.is_file() else None


def run_speed(normal: Image.Image, configs, runs: int = 5) -> list[dict]:
    """Seconds to fit four 900 x 900 references from scratch (cold: nothing cached) and with their
    features cached (warm: what choosing other nearest references costs), and to score one
    900 x 900 query (medians of `runs` fits and of 5 queries)."""
    square = normal.resize((900, 900))
    references = [jitter(square, i) for i in range(4)]
    queries = [jitter(square, 50 + i) for i in range(5)]
    rows = []
    for config in configs:
        for rotation in (False, True):
            def fit(c=config, r=rotation):
                return VisionExpert(c["backbone"], matching=c["matching"], rotation_invariant=r).fit(references)
            cold, warm = [], []
            for _ in range(runs):
                forget(features=True)
                cold.append(timed(fit)[0])
                forget(features=False)
                timing, expert = timed(fit)
                warm.append(timing)
            scores = [timed(lambda i=i, e=expert: e.score(queries[i]))[0] for i in range(len(queries))]
            rows.append({**config, "rotation_invariant": rotation,
                         **{f"{name}_{kind}": statistics.median(t[k] for t in times)
                            for name, times in (("fit_cold", cold), ("fit_warm", warm), ("score", scores))
                            for k, kind in ((0, "s"), (1, "cpu_s"))}})
    return rows


def forget(features: bool) -> None:
    """Drop the fitted sets (and, with features=True, the cached reference features) held in memory."""
    expert_module._FITTED.clear()
    clear = getattr(getattr(expert_module, "cache", None), "clear_memory", None)  # absent before v2
    if features and clear:
        clear()


def timed(action):
    """((wall seconds, CPU seconds of this process), result): CPU time is what one free core would take."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def table(rows: list[dict], columns: list[str]) -> str:
    """A markdown table of the given columns."""
    def cell(value):
        return f"{value:.3f}" if isinstance(value, float) else str(value)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def summary(rows: list[dict]) -> list[dict]:
    """Mean of each metric per configuration and shot count."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["backbone"], row["matching"], row.get("shots", 1)), []).append(row)
    return [{"backbone": b, "matching": m, "shots": s, "classes": len(g),
             **{k: float(np.nanmean([r[k] for r in g])) for k in METRICS if all(k in r for r in g)}}
            for (b, m, s), g in groups.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--per-class", type=int, default=10, help="normal and defective test images per class")
    parser.add_argument("--backbones", default="auto,combined",
                        help="auto = the pretrained EfficientNet-Lite0 (the default); combined = the weight-free fallback")
    parser.add_argument("--matchings", default="auto")
    parser.add_argument("--mvtec", type=Path, help="an MVTec-AD-format folder (optional)")
    parser.add_argument("--mvtec-limit", type=int, default=40, help="test images per MVTec class")
    parser.add_argument("--sections", default="synthetic,real,speed")
    parser.add_argument("--speed-runs", type=int, default=5, help="fits per configuration in the speed section")
    parser.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args()
    configs = [{"backbone": b, "matching": m} for b in args.backbones.split(",") for m in args.matchings.split(",")]
    sections = args.sections.split(",")
    output = []
    normals = normal_photographs(args.data) if args.data.is_dir() else {}
    if not normals and not args.mvtec:
        print(f"no benchmark data at {args.data}; skipping (give --data or --mvtec)")
        return
    metric_columns = list(METRICS)
    if normals and "synthetic" in sections:
        rows = run_synthetic(normals, configs, args.per_class)
        output += ["## Synthetic defects on real normal photographs: summary",
                   table(summary(rows), ["backbone", "matching", "shots", "classes", *metric_columns]),
                   "## Synthetic: per class", table(rows, ["class", "backbone", "matching", "shots", *metric_columns])]
    if normals and "real" in sections:
        rows = run_real_visa(args.data, normals, configs, args.per_class)
        output += ["## Real VisA anomalies vs jittered copies of the one real normal (1 reference)",
                   table(rows, ["class", "backbone", "matching", "real_normals", "real_anomalies", *metric_columns]),
                   table(summary(rows), ["backbone", "matching", "classes", "image_auroc", "normals_flagged",
                                         "anomalies_flagged"])]
        output += ["## Hazelnut toy (real defects with masks, 1 reference)",
                   table(run_hazelnut(args.data, configs), ["backbone", "matching", "rotation_invariant", *metric_columns])]
    if normals and "turned" in sections:
        from expert_pose import pose_summary, run_turned

        rows = run_turned(normals, configs, args.per_class)
        output += ["## Pose handling: each setting on parts as photographed (fixed) and turned at random (4 references)",
                   table(pose_summary(rows), ["backbone", "pose", "setting", "classes", *metric_columns]),
                   table(rows, ["class", "pose", "backbone", "setting", "seed setting", *metric_columns])]
    if args.mvtec:
        rows = run_mvtec(args.mvtec, configs, args.mvtec_limit)
        output += ["## MVTec AD format data", table(summary(rows), ["backbone", "matching", "shots", "classes",
                                                                   *metric_columns]),
                   table(rows, ["class", "backbone", "matching", "shots", *metric_columns])]
    if normals and "speed" in sections:
        output += ["## Speed (one thread)", table(run_speed(next(iter(normals.values())), configs, args.speed_runs),
                                                  ["backbone", "matching", "rotation_invariant", "fit_cold_s",
                                                   "fit_cold_cpu_s", "fit_warm_s", "fit_warm_cpu_s", "score_s",
                                                   "score_cpu_s"])]
    text = "\n\n".join(output) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
