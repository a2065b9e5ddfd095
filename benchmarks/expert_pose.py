"""Pose handling of the vision expert, for benchmarks/bench_expert.py ("turned" section).

Every setting (position or free matching, with or without turned references) on each class's
synthetic set as photographed (fixed pose) and with every image turned by a random angle, and
whether the class's seed setting (knowledge/seed/*.json) is the one that did best.
"""

from __future__ import annotations

import sys

import numpy as np
from bench_expert import METRICS, SEED_SETTINGS, evaluate, synthetic_set
from PIL import Image

from tools.experts.vision.expert import VisionExpert


def turned_set(normal: Image.Image, count: int, seed: int):
    """The synthetic set of one class with every image turned by a random angle (a part lying anyhow)."""
    rng = np.random.default_rng(seed)
    side = min(normal.size)
    square = normal.crop(((normal.width - side) // 2, (normal.height - side) // 2,
                          (normal.width + side) // 2, (normal.height + side) // 2))
    fill = tuple(int(v) for v in np.median(np.asarray(square)[[0, -1]].reshape(-1, 3), axis=0))
    references, samples = synthetic_set(square, count, seed)

    def turn(image):
        return image.rotate(float(rng.uniform(0, 360)), resample=Image.BILINEAR, fillcolor=fill)
    turned = []
    for image, label, mask in samples:
        angle = float(rng.uniform(0, 360))
        moved = image.rotate(angle, resample=Image.BILINEAR, fillcolor=fill)
        moved_mask = None if mask is None else np.asarray(Image.fromarray(mask).rotate(angle)) > 0
        turned.append((moved, label, moved_mask))
    return [turn(r) for r in references], turned


def run_turned(normals, configs, per_class: int) -> list[dict]:
    """Every matching, with and without turned references (4 references), on the class's synthetic
    set as photographed (fixed pose) and with every image turned by a random angle."""
    rows = []
    for seed, (name, normal) in enumerate(normals.items()):
        sets = {"fixed": synthetic_set(normal, per_class, 1000 * seed),
                "turned": turned_set(normal, per_class, 2000 + 1000 * seed)}
        for pose, (references, samples) in sets.items():
            for config in configs:
                for matching in ("position", "free"):
                    for rotation in (False, True):
                        expert = VisionExpert(config["backbone"], matching=matching, rotation_invariant=rotation)
                        rows.append({"class": name, "pose": pose, "backbone": config["backbone"], "shots": 4,
                                     "setting": setting_name(matching, rotation),
                                     "seed setting": seed_setting_name(name) == setting_name(matching, rotation),
                                     **evaluate(expert.fit(references), samples)})
        print(f"  turned {name} done", file=sys.stderr)
    return rows


def setting_name(matching: str, rotation: bool) -> str:
    return f"{matching}{' + turned' if rotation else ''}"


def seed_setting_name(name: str) -> str | None:
    """The seed setting of a development class (hazelnut_toy stands for MVTec AD's hazelnut)."""
    key = {"hazelnut_toy": "hazelnut", "pipefryum": "pipe_fryum"}.get(name, name)
    entry = SEED_SETTINGS.get(key)
    return None if entry is None else setting_name(entry.get("matching", "auto"), bool(entry.get("rotation_invariant")))


def pose_summary(rows: list[dict]) -> list[dict]:
    """Mean of each metric per backbone, pose and setting."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["backbone"], row["pose"], row["setting"]), []).append(row)
    return [{"backbone": b, "pose": p, "setting": m, "classes": len(g),
             **{k: float(np.nanmean([r[k] for r in g])) for k in METRICS if all(k in r for r in g)}}
            for (b, p, m), g in groups.items()]
