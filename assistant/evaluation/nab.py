"""NAB-format series: data/<group>/<name>.csv and labels/combined_windows.json.

One item per series (the class is the group), anomalous when it has labelled windows. Beside the
verdict, the series expert's flagged windows are matched with the labelled ones: a labelled window
is hit when a flagged window overlaps it, a flagged window overlapping none is a false alarm.
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.evaluation.datasets import EvalSet, Item, loader
from tools.errors import InputError


@loader("nab")
def load_nab(root: Path) -> EvalSet:
    """Every labelled series under data/; series missing from the labels file are skipped (noted)."""
    labels_file = root / "labels" / "combined_windows.json"
    if not labels_file.is_file():
        raise InputError(f"{labels_file} not found; a NAB-format set needs labels/combined_windows.json")
    try:
        windows = json.loads(labels_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{labels_file} cannot be read as JSON ({exc}); fix the labels file") from None
    dataset = EvalSet(root, "nab", "series", [])
    unlabelled = []
    for path in sorted((root / "data").glob("*/*.csv")):
        key = path.relative_to(root / "data").as_posix()
        if key not in windows:
            unlabelled.append(key)
            continue
        spans = tuple((str(start), str(end)) for start, end in windows[key])
        dataset.items.append(Item(dataset.relative(path), path.parent.name, path, bool(spans),
                                  "windows" if spans else "good", None, spans))
    dataset.notes.append("Series: one item per series, anomalous when it has labelled windows; no reference "
                         "normals are used (the series expert needs none).")
    if unlabelled:
        dataset.notes.append(f"{len(unlabelled)} series without labels were skipped: {', '.join(unlabelled[:5])}"
                             + (" ..." if len(unlabelled) > 5 else ""))
    return dataset


def _timestamps(values):
    import pandas as pd

    return pd.to_datetime(pd.Series(list(values)), errors="coerce")


def _overlaps(a, b) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def match_windows(labelled, flagged) -> dict:
    """Hits, misses and false alarms of flagged windows against labelled ones (both (start, end))."""
    hits = sum(any(_overlaps(w, f) for f in flagged) for w in labelled)
    false_alarms = sum(not any(_overlaps(f, w) for w in labelled) for f in flagged)
    return {"labelled": len(labelled), "flagged": len(flagged), "hits": hits,
            "missed": len(labelled) - hits, "false_alarms": false_alarms}


def series_windows(item: Item) -> dict:
    """Run the series expert on one series and match its windows with the labelled windows."""
    from tools.experts.series import detect
    from tools.inputs.artifacts import load

    report = detect(load(item.path).payload)
    flagged = [_span(w.start_time, w.end_time) for w in report.windows]
    labelled = [_span(start, end) for start, end in item.windows]
    result = match_windows([w for w in labelled if w], [f for f in flagged if f])
    result["untimed_flags"] = sum(f is None for f in flagged)  # windows without times cannot be matched
    return {**result, "expert_score": round(float(report.score), 4), "expert_anomalous": bool(report.anomalous)}


def _span(start, end):
    """(start, end) as timestamps, or None when either end is missing or not a time."""
    pair = _timestamps([start, end])
    return None if pair.isna().any() else (pair.iloc[0], pair.iloc[1])
