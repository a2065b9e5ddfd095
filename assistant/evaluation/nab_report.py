"""The NAB part of an evaluation's output: nab.json, nab.md (also in report.md), nab_scores.png,
and the table the CLI prints. Pure functions of a NabResult."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.evaluation.nab_corpus import OURS, NabResult

METHOD = ("NAB scoring (NAB v1.1 semantics): the first 15 % of each series (at most 750 rows) is not scored; "
          "each labelled window counts once, by its earliest detection (scaled sigmoid of its position), or "
          "-A_FN when missed; each detection outside the windows costs A_FP scaled by its distance past the "
          "preceding window. Scores are normalised over the series scored: 0 = the null detector (detects "
          "nothing), 100 = the perfect one. Ours: decision threshold 0.5 in every profile; peers: their "
          "threshold per profile from NAB's thresholds.json.")
MODE_NOTE = {"anomalychat": "ours, causal (each row judged from earlier rows only)",
             "anomalychatOffline": "ours, offline (sees the whole series)"}


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def ranking(result: NabResult) -> list[str]:
    """Detectors, best standard-profile score first."""
    return sorted(result.corpus, key=lambda d: -(result.corpus[d].get("standard") or -1e9))


def table_text(result: NabResult) -> str:
    """The NAB table for the terminal: one row per detector, one column per profile."""
    width = max(len(d) for d in result.corpus) + 2
    lines = ["NAB scores (0 = null detector, 100 = perfect), same series for every detector:",
             f"{'detector':<{width}}" + "".join(f"{p:>20}" for p in result.profiles)]
    for detector in ranking(result):
        lines.append(f"{detector:<{width}}" + "".join(f"{_fmt(result.corpus[detector][p]):>20}" for p in result.profiles)
                     + (f"   {MODE_NOTE[detector]}" if detector in MODE_NOTE else ""))
    return "\n".join(lines + [f"note: {n}" for n in result.notes])


def markdown(result: NabResult) -> str:
    """The NAB section of report.md."""
    order = ranking(result)
    header = ["detector", *result.profiles]
    lines = ["## NAB scores (series)", "", METHOD, "", _row(header), _row(["---"] * len(header))]
    for detector in order:
        label = f"**{detector}** ({MODE_NOTE[detector]})" if detector in MODE_NOTE else detector
        lines.append(_row([label, *(_fmt(result.corpus[detector][p]) for p in result.profiles)]))
    groups = sorted({g for d in result.groups.values() for g in d})
    lines += ["", "Per group, standard profile (a group without labelled windows has no normalised score: –):", "",
              _row(["detector", *groups]), _row(["---"] * (len(groups) + 1))]
    for detector in order:
        lines.append(_row([detector, *(_fmt(result.groups[detector].get(g, {}).get("standard")) for g in groups)]))
    lines += ["", _counts(result, order), "", "![NAB scores](nab_scores.png)"]
    if result.seconds:
        lines += ["", "CPU time of our detector over these series: "
                  + ", ".join(f"{d} {s:.1f} s" for d, s in result.seconds.items()) + "."]
    lines += [f"- {n}" for n in result.notes]
    lines += ["", f"Our detections in NAB's results layout: results/{OURS['causal']}/ and results/{OURS['offline']}/."]
    return "\n".join(lines)


def _counts(result: NabResult, order: list[str]) -> str:
    lines = ["Standard profile, windows found / missed and false alarms (detections outside every window):", "",
             _row(["detector", "found", "missed", "false alarms"]), _row(["---"] * 4)]
    for detector in order:
        series = result.series[detector].values()
        lines.append(_row([detector, sum(s["found"] for s in series), sum(s["missed"] for s in series),
                           sum(s["false_alarms"] for s in series)]))
    return "\n".join(lines)


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def chart(result: NabResult, path: Path) -> Path:
    """Grouped bars: every detector's corpus score in each profile, ours highlighted."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    order = ranking(result)
    figure = Figure(figsize=(max(6.0, 1.1 * len(order) + 2), 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    x = np.arange(len(order))
    width = 0.8 / max(1, len(result.profiles))
    for offset, profile in enumerate(result.profiles):
        heights = [result.corpus[d][profile] if result.corpus[d][profile] is not None else np.nan for d in order]
        axes.bar(x + (offset - (len(result.profiles) - 1) / 2) * width, heights, width, label=profile)
    axes.set_xticks(x, [f"{d}\n(ours)" if d in MODE_NOTE else d for d in order], rotation=30, ha="right")
    axes.axhline(0, color="grey", linewidth=0.8)
    axes.set_ylabel("NAB score (0 null, 100 perfect)")
    axes.set_title("NAB scores on the same series")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    return path


def write_nab(out: Path, result: NabResult) -> str:
    """nab.json, nab.md and nab_scores.png in out; returns the markdown section."""
    (out / "nab.json").write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    section = markdown(result)
    (out / "nab.md").write_text(section + "\n", encoding="utf-8")
    chart(result, out / "nab_scores.png")
    return section
