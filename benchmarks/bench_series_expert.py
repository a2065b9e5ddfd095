"""The series expert on NAB (../shared/data/nab_dev), scored the NAB way, settings cross-validated.

Leave-one-group-out: for each NAB group, the settings (threshold, smoothing, quiet period, lengths)
are chosen on the other groups only (best pooled standard-profile NAB score there), then the
detector runs with them on the held-out group. The held-out detections of all groups together give
the cross-validated corpus score; NAB's published detectors are scored on the same series beside
it. Both modes (causal, offline). Also the setting chosen on all groups (the shipped default) and
CPU time. Skips (exit 0) when the data is absent.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_series_expert.py [--data DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.evaluation import nab_score  # noqa: E402
from assistant.evaluation.datasets import load_dataset  # noqa: E402
from assistant.evaluation.nab_corpus import load_series, our_scores, peer_scores, score_detector  # noqa: E402
from tools.experts.series import detect  # noqa: E402
from tools.experts.series_scores import DEFAULT, ScoreSettings  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab_dev"
PEERS = ("contextOSE", "numenta", "ARTime", "randomCutForest", "windowedGaussian")
GRID = {
    "causal": {"causal_threshold": (1.5, 2.0, 2.5, 3.0), "smooth_rows": (1, 5), "quiet_share": (0.1, 0.25),
               "lengths": ((8, 32, 128), (32,))},
    "offline": {"offline_threshold": (8.0, 12.0, 16.0, 24.0), "offline_smooth_rows": (5,), "quiet_share": (0.25,),
                "lengths": ((8, 32, 128), (32,))},
}
STANDARD = nab_score.PROFILES["standard"]


def candidates(mode: str) -> list[ScoreSettings]:
    grid = GRID[mode]
    return [replace(DEFAULT, **dict(zip(grid, values, strict=True))) for values in itertools.product(*grid.values())]


def nab_of(series, scores) -> float | None:
    """Pooled standard-profile NAB score of these series."""
    scored = [nab_score.score_detections(nab_score.detections(scores[s.key], 0.5), s.spans, STANDARD) for s in series]
    return nab_score.normalised(scored, STANDARD)


def sweep(series, mode: str) -> dict:
    """Decision scores of every candidate setting on every series (computed once, reused by every fold)."""
    table = {}
    for settings in candidates(mode):
        table[settings] = our_scores(series, mode, settings)[0]
    return table


def cross_validate(series, table: dict) -> tuple[dict, dict, ScoreSettings]:
    """Held-out scores per series (settings chosen without the series' group), the choice per group, and overall."""
    groups = sorted({s.group for s in series})
    held_out, choices = {}, {}
    for group in groups:
        train = [s for s in series if s.group != group]
        best = max(table, key=lambda c: nab_of(train, table[c]) or -1e9)
        choices[group] = best
        held_out.update({s.key: table[best][s.key] for s in series if s.group == group})
    overall = max(table, key=lambda c: nab_of(series, table[c]) or -1e9)
    return held_out, choices, overall


def speed(series, mode: str) -> dict:
    """CPU seconds of one thread per series (median) and per 10,000 rows."""
    per_series, rows = [], 0
    for s in series:
        started = time.process_time()
        detect(s.frame, mode=mode, learn_rows=int(nab_score.probation_rows(len(s.frame))))
        per_series.append(time.process_time() - started)
        rows += len(s.frame)
    return {"median_s": statistics.median(per_series), "per_10k_rows_s": 1e4 * sum(per_series) / rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args(argv)
    if not (args.data / "labels" / "combined_windows.json").is_file():
        print(f"skipped: no NAB data at {args.data}")
        return 0
    series = load_series(load_dataset(args.data, "nab"))
    detect(series[0].frame.iloc[:300], mode="causal")  # compile the numba kernel outside the timings
    results = {}
    for mode in ("causal", "offline"):
        held_out, choices, overall = cross_validate(series, sweep(series, mode))
        results[mode] = {"held_out": held_out, "choices": choices, "overall": overall, "speed": speed(series, mode)}
    peers = {d: peer_scores(args.data / "results", d, series) for d in PEERS if (args.data / "results" / d).is_dir()}
    thresholds = json.loads((args.data / "config" / "thresholds.json").read_text()) if peers else {}
    print(report(series, results, peers, thresholds, args.markdown))
    return 0


def report(series, results, peers, thresholds, markdown: bool) -> str:
    groups = sorted({s.group for s in series})
    profiles = dict(nab_score.PROFILES)
    rows = {f"anomalychat {mode} (held out)": (r["held_out"], {p: 0.5 for p in profiles}) for mode, r in results.items()}
    rows.update({d: (scores, {p: thresholds[d][p]["threshold"] for p in profiles}) for d, scores in peers.items()})
    scored = {name: score_detector(series, scores, th, profiles) for name, (scores, th) in rows.items()}
    lines = ["| detector | corpus " + " | ".join(profiles) + " | " + " | ".join(groups) + " |",
             "|---" * (1 + len(profiles) + len(groups)) + "|"]
    for name, (corpus, per_group, _) in sorted(scored.items(), key=lambda kv: -(kv[1][0]["standard"] or -1e9)):
        cells = [_fmt(corpus[p]) for p in profiles] + [_fmt(per_group[g]["standard"]) for g in groups]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Group columns: standard profile, each group scored with the settings chosen on the other groups "
              "(for ours); – = no labelled window in the group.", ""]
    lines += _choices(results, groups)
    text = "\n".join(lines)
    return text if markdown else text.replace("| ", "").replace(" |", "  ")


def _choices(results, groups) -> list[str]:
    lines = ["| mode | held-out group | settings chosen on the other groups |", "|---|---|---|"]
    for mode, r in results.items():
        for group in groups:
            lines.append(f"| {mode} | {group} | {_setting(r['choices'][group], mode)} |")
        lines.append(f"| {mode} | (none: all groups) | {_setting(r['overall'], mode)} |")
    lines += ["", "| mode | CPU per series (median, one thread) | CPU per 10,000 rows |", "|---|---|---|"]
    lines += [f"| {m} | {r['speed']['median_s']:.3f} s | {r['speed']['per_10k_rows_s']:.3f} s |" for m, r in results.items()]
    return lines


def _setting(s: ScoreSettings, mode: str) -> str:
    threshold = s.causal_threshold if mode == "causal" else s.offline_threshold
    smooth = s.smooth_rows if mode == "causal" else s.offline_smooth_rows
    return f"threshold {threshold}, smooth {smooth}, quiet {s.quiet_share}, lengths {s.lengths}"


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
