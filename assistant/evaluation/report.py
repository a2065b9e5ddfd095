"""The files an evaluation leaves in --out: metrics.json, metrics.csv, run.json and report.md.

report.md puts the table in the paper's layout (classes as rows, ACC/AUROC/AUPR per strategy, every
item ranked), the prompt ablation (strategies as rows), the answered-only figures beside them, the
score sources per class, the knowledge used, how each number is computed and, for MVTec AD, the
paper's published mean figures beside ours (assistant/evaluation/report_scores.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from assistant.evaluation import ranking, report_scores
from assistant.evaluation.metrics import METRICS
from assistant.evaluation.tables import fmt
from assistant.evaluation.tables import row as _row

# Xu et al., 2024, Table I: means over the 15 MVTec AD classes.
PAPER_MEANS = [
    ("GPT-4V, rules + reference (paper, Table I mean)", {"acc": 0.842, "auroc": 0.829, "aupr": 0.593}),
    ("Gemini Pro Vision (paper, Table I mean)", {"acc": 0.760, "auroc": 0.625, "aupr": 0.370}),
]
PIXEL_AUROC_NOTE = ("Pixel AUROC ranks the vision expert's heatmap values over the defect pixels of the ground-truth "
                    "masks against all other pixels (normal test images included); classes without masks have none. "
                    "Box hits: of the anomalies called anomalous with a box and a mask, how many boxes overlap the defect.")
GRID_NOTE = ("Point clouds are localised in the sensor grid, the frame of the ground-truth masks: the 3-D expert's "
             "per-point map of an organised scan is a per-cell map there (pixel AUROC pooled over all cells that hold a "
             "point; the same map for every strategy), and a box hit means the strongest region's box in the grid "
             "covers a defect cell. Boxes on the rendered view are never compared with these masks.")
OFFLINE_NOTE = ("The offline backend does not read the prompt: every strategy is answered from the vision expert's "
                "evidence, so the strategy columns are expected to agree; the prompt ablation needs a VLM backend.")
CSV_FIELDS = ["strategy", "group", "n", "n_anomalous", "acc", "auroc", "aupr", "scored", "excluded", "undecided",
              "unparsed", "error", "tp", "fn", "fp", "tn", "pixel_auroc", "box_hits", "boxes_checked", "auroc_note"]


def write_metrics(out: Path, table: dict) -> None:
    """metrics.json ({strategy: {per_class, mean, pooled}}) and metrics.csv (one row per strategy and group)."""
    (out / "metrics.json").write_text(json.dumps(table, indent=2, sort_keys=False), encoding="utf-8")
    with (out / "metrics.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, CSV_FIELDS + ranking.CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for strategy, result in table.items():
            groups = [*result["per_class"].items(), ("mean", result["mean"]), ("pooled", result["pooled"])]
            for group, values in groups:
                writer.writerow({"strategy": strategy, "group": group, **values, **values.get("confusion", {}),
                                 **ranking.csv_cells(values)})


def write_run_info(out: Path, info: dict) -> None:
    (out / "run.json").write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")


def write_report(out: Path, table: dict, info: dict, extra: str = "") -> Path:
    """report.md from the metrics table and the run information (extra: a section such as the NAB scores)."""
    sections = [_heading(info), _paper_table(table), _ablation(table, info), report_scores.answered_only(table),
                _confusions(table), _no_verdicts(table), report_scores.score_sources(table), _defects(table),
                _localisation(table, info.get("modality", "image")), _windows(table), extra,
                report_scores.knowledge(info), _run(info), _notes(info), report_scores.how_computed()]
    path = out / "report.md"
    path.write_text("\n\n".join(s for s in sections if s) + "\n", encoding="utf-8")
    return path


def _heading(info: dict) -> str:
    refs = info["references"]
    return (f"# Evaluation: {info['dataset']} ({info['format']})\n\n"
            f"Backend `{info['backend']}`, model `{info['model']}`, prompt version `{info['prompt_version']}`; "
            f"{info['items']} test items in {info['classes']} classes; strategies: {', '.join(info['strategies'])}; "
            f"references: {refs}; seed {info['seed']}. Anomaly is the positive class.")


def _paper_table(table: dict) -> str:
    strategies = list(table)
    header = ["class"] + [f"{s} {m.upper()}" for s in strategies for m in METRICS]
    classes = sorted({c for r in table.values() for c in r["per_class"]})
    lines = ["## Results per class (paper layout; every item ranked)", "", _row(header), _row(["---"] * len(header))]
    for name in classes:
        cells = [table[s]["per_class"].get(name, {}) for s in strategies]
        lines.append(_row([name] + [fmt(c.get(m)) for c in cells for m in METRICS]))
    lines.append(_row(["**mean over classes**"] + [fmt(table[s]["mean"][m]) for s in strategies for m in METRICS]))
    lines.append(_row(["pooled (all items together)"] + [fmt(table[s]["pooled"][m]) for s in strategies for m in METRICS]))
    undefined = [f"{s} / {c}: {v['auroc_note']}" for s in strategies for c, v in table[s]["per_class"].items()
                 if v["auroc_note"]]
    if undefined:
        lines += ["", "AUROC/AUPR not defined (–): " + "; ".join(undefined) + "."]
    return "\n".join(lines)


def _ablation(table: dict, info: dict) -> str:
    header = ["strategy", "mean ACC", "mean AUROC", "mean AUPR", "pooled ACC", "pooled AUROC", "pooled AUPR", "n"]
    lines = ["## Prompt ablation (means over classes)", "", _row(header), _row(["---"] * len(header))]
    for strategy, result in table.items():
        mean, pooled = result["mean"], result["pooled"]
        lines.append(_row([strategy] + [fmt(mean[m]) for m in METRICS] + [fmt(pooled[m]) for m in METRICS]
                          + [pooled["n"]]))
    if info["format"] == "mvtec":
        for label, values in PAPER_MEANS:
            lines.append(_row([label] + [fmt(values[m]) for m in METRICS] + ["", "", "", "15 classes"]))
        lines += ["", report_scores.PAPER_NOTE]
    return "\n".join(lines)


def _confusions(table: dict) -> str:
    header = ["strategy", "TP", "FN", "FP", "TN", "no verdict (anomalous)", "no verdict (normal)"]
    lines = ["## Confusion matrix (pooled, anomaly = positive)", "", _row(header), _row(["---"] * len(header))]
    for strategy, result in table.items():
        c = result["pooled"]["confusion"]
        lines.append(_row([strategy, c["tp"], c["fn"], c["fp"], c["tn"], c["no_verdict_anomalous"],
                           c["no_verdict_normal"]]))
    return "\n".join(lines)


def _no_verdicts(table: dict) -> str:
    header = ["strategy", "undecided", "unparsed", "errors", "ranked at 0.5 (no verdict)", "ranked source",
              "mapped to the threshold (other source)"]
    lines = ["## Answers without a verdict (pooled; how they are scored: see 'How each number is computed')", "",
             _row(header), _row(["---"] * len(header))]
    for strategy, result in table.items():
        p = result["pooled"]
        lines.append(_row([strategy, p["undecided"], p["unparsed"], p["error"], p["neutral"],
                           p["ranked_source"] or "–", p["mapped"]]))
    return "\n".join(lines)


def _defects(table: dict) -> str:
    kinds = sorted({k for r in table.values() for k in r["pooled"]["by_defect"]})
    if len(kinds) <= 2:
        return ""
    strategies = list(table)
    lines = ["## Called anomalous, by defect kind (pooled; for 'good' this is the false-alarm rate)", "",
             _row(["defect"] + strategies + ["n"]), _row(["---"] * (len(strategies) + 2))]
    for kind in kinds:
        entries = [table[s]["pooled"]["by_defect"].get(kind) for s in strategies]
        n = next((e["n"] for e in entries if e), 0)
        lines.append(_row([kind] + [fmt(e["rate"]) if e else "–" for e in entries] + [n]))
    return "\n".join(lines)


def _localisation(table: dict, modality: str = "image") -> str:
    if not any(_localised(v) for r in table.values() for v in [*r["per_class"].values(), r["pooled"]]):
        return "## Localisation\n\nNo ground-truth masks (or no expert heatmaps) in this run: nothing to localise."
    header = ["strategy", "class", "pixel AUROC", "box hits", "box hit rate"]
    note = GRID_NOTE if modality == "point_cloud" else PIXEL_AUROC_NOTE
    lines = ["## Localisation (per class)", "", note, "", _row(header), _row(["---"] * len(header))]
    for strategy, result in table.items():
        groups = [*result["per_class"].items(), ("**pooled**", result["pooled"])]
        for name, values in groups:
            if _localised(values):
                hits = f"{values['box_hits']}/{values['boxes_checked']}" if values.get("boxes_checked") else "–"
                lines.append(_row([strategy, name, fmt(values.get("pixel_auroc")), hits, fmt(values.get("box_hit_rate"))]))
    return "\n".join(lines)


def _localised(values: dict) -> bool:
    return values.get("pixel_auroc") is not None or bool(values.get("boxes_checked"))


def _windows(table: dict) -> str:
    first = next(iter(table.values()), {}).get("pooled", {})
    totals = first.get("windows")
    if not totals:
        return ""
    lines = ["## Series windows (the series expert, same for every strategy)", "",
             _row(["group", "labelled windows", "hit", "missed", "flagged", "false alarms"]), _row(["---"] * 6)]
    groups = [*next(iter(table.values()))["per_class"].items(), ("all", first)]
    for name, values in groups:
        w = values.get("windows") or {}
        lines.append(_row([name, w.get("labelled", 0), w.get("hits", 0), w.get("missed", 0), w.get("flagged", 0),
                           w.get("false_alarms", 0)]))
    lines += ["", "A labelled window is hit when a flagged window overlaps it; a flagged window that overlaps no "
              "labelled window is a false alarm."]
    return "\n".join(lines)


def _run(info: dict) -> str:
    usage = info.get("usage", {})
    cost = info.get("cost_usd")
    cost_text = ("none (the offline backend runs on this machine)" if info["backend"] == "offline"
                 else "unknown (model not in the price table)" if cost is None
                 else f"about ${cost:.4f} (approximate list prices, assistant/evaluation/costs.py)")
    speed = info.get("items_per_second")
    return "\n".join([
        "## Run", "",
        f"- analyses: {info['analyses']} ({info['ran']} run now, {info['cached']} from results.jsonl)",
        f"- wall time of this run: {info['seconds']:.1f} s" + (f", {speed:.2f} analyses/s" if speed else ""),
        f"- concurrency {info['concurrency']}" + (f", at most {info['rpm']} analyses per minute" if info.get("rpm") else ""),
        f"- tokens (all results in this table): input {usage.get('input_tokens', 0)}, output {usage.get('output_tokens', 0)}",
        f"- cost estimate: {cost_text}",
    ])


def _notes(info: dict) -> str:
    notes = list(info.get("notes", []))
    if info["backend"] == "offline":
        notes.append(OFFLINE_NOTE)
    return "## Notes\n\n" + "\n".join(f"- {n}" for n in notes) if notes else ""
