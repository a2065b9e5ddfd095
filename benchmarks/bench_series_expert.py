"""The series expert on NAB (../shared/data/nab_dev), scored the NAB way, settings cross-validated.

Leave-one-group-out: for each NAB group, the settings (causal: threshold, smoothing, quiet period, lengths,
escalation; offline: threshold, confirming discord z and its reach) are chosen on the other groups
only (best pooled standard-profile NAB score there), then the detector runs with them on the held-out group. The held-out detections of all groups together give
the cross-validated corpus score; NAB's published detectors are scored on the same series beside
it. Both modes (causal, offline). The offline mode answers people, so only its settings that flag
nothing on generated clean series (noise, cycles; 3,000 and 10,000 rows) are candidates; the
causal mode is NAB's streaming contest and its clean-series windows are reported, not filtered.
Also the setting chosen on all groups (the shipped default), CPU time, and a 1,000,000-row series.
Skips (exit 0) when the data is absent.

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
from tests.helpers import data  # noqa: E402
from tools.experts.series import detect  # noqa: E402
from tools.experts.series_scores import DEFAULT, ScoreSettings  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab_dev"
PEERS = ("contextOSE", "numenta", "ARTime", "randomCutForest", "windowedGaussian")
GRID = {
    "causal": {"causal_threshold": (2.0, 2.5, 3.0, 3.5), "smooth_rows": (3, 5), "quiet_share": (0.1, 0.15, 0.2),
               "lengths": ((4,), (4, 32)), "escalation": (3.0, 10.0)},
    "offline": {"offline_threshold": (2.5, 3.0), "offline_confirm": (5.0, 6.0, 8.0),
                "offline_lengths": ((8, 32, 128), (32,), (64,))},
}
CLEAN = [(rows, seed, period, noise) for rows in (3000, 10_000) for seed in range(3)
         for period, noise in ((None, 0.05), (96, 0.2), (96, 0.05))]  # generated series with nothing to find
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


def clean_windows(settings: ScoreSettings, mode: str) -> int:
    """Windows flagged on generated series that have nothing to find (white noise, noisy and clean cycles)."""
    frames = (data.series_frame(rows, label=False, seed=seed, period=period, noise=noise).set_index("timestamp")
              for rows, seed, period, noise in CLEAN)
    return sum(len(detect(frame, mode=mode, settings=settings).windows) for frame in frames)


def allowed(table: dict, clean: dict, mode: str) -> list:
    """Candidate settings: offline, those that keep clean series clean (the fewest false windows if none does)."""
    if mode == "causal":
        return list(table)
    fewest = min(clean.values())
    return [c for c in table if clean[c] == fewest]


def cross_validate(series, table: dict, candidates_: list) -> tuple[dict, dict, ScoreSettings]:
    """Held-out scores per series (settings chosen without the series' group), the choice per group, and overall."""
    groups = sorted({s.group for s in series})
    table = {c: table[c] for c in candidates_}
    held_out, choices = {}, {}
    for group in groups:
        train = [s for s in series if s.group != group]
        best = max(table, key=lambda c: nab_of(train, table[c]) or -1e9)
        choices[group] = best
        held_out.update({s.key: table[best][s.key] for s in series if s.group == group})
    overall = max(table, key=lambda c: nab_of(series, table[c]) or -1e9)
    return held_out, choices, overall


def speed(series, mode: str) -> dict:
    """CPU seconds of one thread per series (median), per 10,000 rows, and for one 1,000,000-row series."""
    per_series, rows = [], 0
    for s in series:
        started = time.process_time()
        detect(s.frame, mode=mode, learn_rows=int(nab_score.probation_rows(len(s.frame))))
        per_series.append(time.process_time() - started)
        rows += len(s.frame)
    long = data.series_frame(1_000_000, label=False, period=500, noise=0.1, freq="1s").set_index("timestamp")
    started = time.process_time()
    detect(long, mode=mode)
    return {"median_s": statistics.median(per_series), "per_10k_rows_s": 1e4 * sum(per_series) / rows,
            "million_rows_s": time.process_time() - started}


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
        table = sweep(series, mode)
        clean = {c: clean_windows(c, mode) for c in table}
        held_out, choices, overall = cross_validate(series, table, allowed(table, clean, mode))
        results[mode] = {"held_out": held_out, "choices": choices, "overall": overall, "clean": clean,
                         "speed": speed(series, mode)}
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
    lines = ["| detector | corpus " + " | ".join(profiles) + " | " + " | ".join(groups) + " | false alarms |",
             "|---" * (2 + len(profiles) + len(groups)) + "|"]
    for name, (corpus, per_group, details) in sorted(scored.items(), key=lambda kv: -(kv[1][0]["standard"] or -1e9)):
        cells = [_fmt(corpus[p]) for p in profiles] + [_fmt(per_group[g]["standard"]) for g in groups]
        quiet_group = sum(d["false_alarms"] for key, d in details.items() if key.startswith("artificialNoAnomaly/"))
        cells.append(f"{sum(d['false_alarms'] for d in details.values())} ({quiet_group} in artificialNoAnomaly)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Group columns: standard profile, each group scored with the settings chosen on the other groups "
              "(for ours); – = no labelled window in the group (its false alarms count in the corpus score and "
              "are listed in the last column).", ""]
    lines += _choices(results, groups)
    text = "\n".join(lines)
    return text if markdown else text.replace("| ", "").replace(" |", "  ")


def _choices(results, groups) -> list[str]:
    lines = ["| mode | held-out group | settings chosen on the other groups | windows on clean series |", "|---|---|---|---|"]
    for mode, r in results.items():
        for group in groups:
            chosen = r["choices"][group]
            lines.append(f"| {mode} | {group} | {_setting(chosen, mode)} | {r['clean'][chosen]} |")
        lines.append(f"| {mode} | (none: all groups) | {_setting(r['overall'], mode)} | {r['clean'][r['overall']]} |")
    lines += ["", f"Clean series: {len(CLEAN)} generated series with nothing to find (white noise, noisy and clean "
              "daily cycles; 3,000 and 10,000 rows).", "",
              "| mode | CPU per series (median, one thread) | CPU per 10,000 rows | one 1,000,000-row series |",
              "|---|---|---|---|"]
    lines += [f"| {m} | {r['speed']['median_s']:.3f} s | {r['speed']['per_10k_rows_s']:.3f} s | "
              f"{r['speed']['million_rows_s']:.1f} s |" for m, r in results.items()]
    return lines


def _setting(s: ScoreSettings, mode: str) -> str:
    if mode == "causal":
        return (f"threshold {s.causal_threshold}, smooth {s.smooth_rows}, quiet {s.quiet_share}, lengths {s.lengths}, "
                f"escalation {s.escalation:g}")
    return (f"threshold {s.offline_threshold}, confirmed at {s.offline_confirm:g} within {s.confirm_rows} rows, "
            f"lengths {s.offline_lengths}")


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
