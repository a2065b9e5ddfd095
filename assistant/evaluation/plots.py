"""PNG charts of an evaluation (matplotlib's object API on the Agg canvas: no GUI, thread-safe).

bars_<strategy>.png: ACC, AUROC and AUPR per class; roc_<strategy>.png: a ROC curve per class and
the pooled one. Pure functions of the metrics and result rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from assistant.evaluation import ranking
from assistant.evaluation.metrics import METRICS


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def file_stem(strategy: str) -> str:
    """A strategy name usable in a file name (rules+reference -> rules+reference, spaces and slashes out)."""
    return re.sub(r"[^A-Za-z0-9+_.-]", "_", strategy)


def class_bars(result: dict, strategy: str, path: Path) -> Path:
    """Grouped bars: for each class, ACC, AUROC and AUPR (a missing value shows no bar)."""
    classes = list(result["per_class"]) + ["mean"]
    values = {m: [result["per_class"][c][m] for c in classes[:-1]] + [result["mean"][m]] for m in METRICS}
    figure = _figure(max(6.0, 0.7 * len(classes) + 2), 4.0)
    axes = figure.add_subplot()
    x = np.arange(len(classes))
    width = 0.27
    for offset, metric in enumerate(METRICS):
        heights = [np.nan if v is None else v for v in values[metric]]
        axes.bar(x + (offset - 1) * width, heights, width, label=metric.upper())
        for position, value in zip(x + (offset - 1) * width, values[metric], strict=True):
            if value is None:  # undefined (one label only): say so rather than show an empty gap
                axes.text(position, 0.01, "n/a", rotation=90, ha="center", va="bottom", fontsize="x-small")
    axes.set_xticks(x, classes, rotation=45, ha="right")
    axes.set_ylim(0, 1.05)
    axes.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    axes.set_title(f"Per-class results, strategy {strategy}")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    return path


def roc_curves(rows: list[dict], result: dict, strategy: str, path: Path) -> Path:
    """ROC curves of each class with both labels, and the pooled curve, over the ranking scores of the metrics."""
    from sklearn.metrics import roc_curve

    figure = _figure(5.5, 5.0)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
    groups = [(c, [r for r in rows if r["class"] == c], result["per_class"][c]) for c in result["per_class"]]
    for name, members, values in [*groups, ("pooled", rows, result["pooled"])]:
        if values["auroc"] is None:
            continue
        fpr, tpr, _ = roc_curve(*ranking.labels_and_scores(members, values["ranked_source"]))
        pooled = name == "pooled"
        axes.plot(fpr, tpr, linewidth=2.5 if pooled else 1.0, color="black" if pooled else None,
                  label=f"{name} (AUROC {values['auroc']:.3f})")
    axes.set_xlabel("false-positive rate (normal called anomalous)")
    axes.set_ylabel("true-positive rate (anomaly found)")
    axes.set_title(f"ROC, strategy {strategy}")
    axes.legend(loc="lower right", fontsize="x-small")
    figure.tight_layout()
    figure.savefig(path)
    return path


def write_plots(out: Path, rows: list[dict], table: dict) -> list[Path]:
    """Every chart of a run; returns the files written."""
    written = []
    for strategy, result in table.items():
        mine = [r for r in rows if r["strategy"] == strategy]
        written.append(class_bars(result, strategy, out / f"bars_{file_stem(strategy)}.png"))
        written.append(roc_curves(mine, result, strategy, out / f"roc_{file_stem(strategy)}.png"))
    return written
