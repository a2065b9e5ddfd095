"""The series expert on NAB (../shared/data/nab_dev): hits and false alarms per series.

A labelled window is hit when a flagged window overlaps it; a flagged window that overlaps no
labelled window is a false alarm. Skips (exit 0) when the data is absent.

    .venv/bin/python benchmarks/bench_series_expert.py [--data DIR] [--threshold Z ...] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.experts.series import THRESHOLD, detect  # noqa: E402
from tools.inputs.artifacts import load  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab_dev"


def evaluate(path: Path, labelled: list[list[str]], threshold: float, **options) -> dict:
    """Run the expert on one NAB file and compare its windows with the labelled ones."""
    artifact = load(path)
    started = time.perf_counter()
    report = detect(artifact.payload, threshold=threshold, **options)
    seconds = time.perf_counter() - started
    truth = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in labelled]
    found = [(pd.Timestamp(w.start_time), pd.Timestamp(w.end_time)) for w in report.windows]
    hits = sum(any(_overlap(t, f) for f in found) for t in truth)
    false_alarms = sum(not any(_overlap(f, t) for t in truth) for f in found)
    return {"rows": artifact.meta["rows"], "labelled": len(truth), "hits": hits, "false_alarms": false_alarms,
            "flagged": len(found), "score": report.score, "period": report.periods.get("value"), "seconds": seconds}


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def run(data: Path, threshold: float, **options) -> dict[str, dict]:
    """Every series in the labels file that is present under data/."""
    windows = json.loads((data / "labels" / "combined_windows.json").read_text())
    results = {}
    for name, labelled in sorted(windows.items()):
        path = data / "data" / name
        if path.exists():
            results[name] = evaluate(path, labelled, threshold, **options)
    return results


def totals(results: dict[str, dict]) -> dict:
    """Summed hits and false alarms, and series-level verdict accuracy."""
    labelled = sum(r["labelled"] for r in results.values())
    hits = sum(r["hits"] for r in results.values())
    alarms = sum(r["false_alarms"] for r in results.values())
    clean = [r for r in results.values() if r["labelled"] == 0]
    return {"series": len(results), "labelled": labelled, "hits": hits, "false_alarms": alarms,
            "clean_series": len(clean), "clean_series_with_alarm": sum(r["false_alarms"] > 0 for r in clean)}


def markdown(results: dict[str, dict], threshold: float) -> str:
    """The per-series table for benchmarks/results/inputs.md."""
    rows = [f"Threshold z = {threshold}.", "",
            "| series | rows | period | labelled windows | hit | false alarms | score |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        rows.append(f"| {name} | {r['rows']} | {r['period'] or '-'} | {r['labelled']} | {r['hits']} | "
                    f"{r['false_alarms']} | {r['score']:.2f} |")
    t = totals(results)
    rows.append(f"| **total ({t['series']} series)** | | | **{t['labelled']}** | **{t['hits']}** | **{t['false_alarms']}** | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threshold", type=float, nargs="*", default=[THRESHOLD])
    parser.add_argument("--markdown", action="store_true", help="print the per-series table")
    args = parser.parse_args(argv)
    if not (args.data / "labels" / "combined_windows.json").exists():
        print(f"NAB data not found at {args.data}; skipped")
        return 0
    for threshold in args.threshold:
        results = run(args.data, threshold)
        print(f"threshold {threshold}: {totals(results)}")
        if args.markdown:
            print(markdown(results, threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
