"""An evaluation from start to finish: run (or resume), compute the metrics, write every output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant import prompts
from assistant.evaluation import plots, report
from assistant.evaluation.costs import add_usage, estimate_cost
from assistant.evaluation.datasets import EvalSet
from assistant.evaluation.metrics import SCORING, all_metrics
from assistant.evaluation.runner import EvaluationRun, RunOptions, RunOutcome


@dataclass
class EvaluationResult:
    out_dir: Path
    metrics: dict  # {strategy: {"per_class", "mean", "pooled"}}
    info: dict  # what run.json holds
    outcome: RunOutcome
    nab: object = None  # assistant.evaluation.nab_corpus.NabResult for --format nab


def describe_references(dataset: EvalSet, options: RunOptions) -> str:
    """Where the reference normals came from, in one sentence for the report."""
    if dataset.modality == "series":
        return "none (series are judged without reference normals)"
    if options.shots == 0:
        return "none (--shots 0)"
    if dataset.leave_one_out:
        return (f"{options.shots} per item ({options.ref_choice}) from the other normals of its class: leave-one-out, "
                "because this data set has no training split; an item is never its own reference")
    return f"{options.shots} per item ({options.ref_choice}) from the training normals (train/good), never from the test split"


def evaluate(dataset: EvalSet, settings, kb, options: RunOptions, out_dir, *, backend=None,
             nab_options=None) -> EvaluationResult:
    """Run what is not cached in out_dir yet, then write metrics.json/.csv, run.json, report.md and plots.

    `backend`: the one every analysis uses (default: the one the settings choose)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = EvaluationRun(dataset, settings, kb, options, out, backend=backend)
    outcome = run.run()
    table = all_metrics(outcome.rows, options.strategies)
    info = run_info(dataset, options, outcome, run.cache.ignored_lines)
    info.update(knowledge_fingerprints=run.knowledge.all(), knowledge_fingerprint=run.knowledge.combined(),
                score_sources=score_sources(table))
    report.write_metrics(out, table)
    report.write_run_info(out, info)
    nab, nab_section = _nab(dataset, out, nab_options)
    report.write_report(out, table, info, extra=nab_section)
    plots.write_plots(out, outcome.rows, table)
    return EvaluationResult(out, table, info, outcome, nab)


def score_sources(table: dict) -> dict:
    """Per strategy: the score source its rankings use and how many items had each source (all classes)."""
    return {strategy: {"ranked_source": result["pooled"]["ranked_source"], "mix": result["pooled"]["score_sources"]}
            for strategy, result in table.items()}


def _nab(dataset: EvalSet, out: Path, nab_options):
    """NAB scores of the series expert and the peers (NAB-format sets only), and their report section."""
    if dataset.format != "nab":
        return None, ""
    from assistant.evaluation.nab_corpus import nab_benchmark
    from assistant.evaluation.nab_report import write_nab

    result = nab_benchmark(dataset, out, nab_options)
    return result, write_nab(out, result)


def run_info(dataset: EvalSet, options: RunOptions, outcome: RunOutcome, ignored_lines: int = 0) -> dict:
    """What was run, how, how fast and at what cost (run.json, and the report's Run section)."""
    usage: dict = {}
    for row in outcome.rows:
        add_usage(usage, row.get("usage"))
    notes = list(dataset.notes)
    if ignored_lines:
        notes.append(f"{ignored_lines} unreadable line(s) in results.jsonl (a run killed mid-write) were ignored.")
    return {
        "dataset": dataset.root.name, "root": str(dataset.root), "format": dataset.format, "modality": dataset.modality,
        "backend": outcome.backend, "model": outcome.model, "prompt_version": prompts.PROMPT_VERSION,
        "items": len(dataset.items), "classes": len(dataset.classes), "strategies": list(options.strategies),
        "references": describe_references(dataset, options), "shots": options.shots, "ref_choice": options.ref_choice,
        "leave_one_out": dataset.leave_one_out, "seed": options.seed, "analyses": len(outcome.rows),
        "ran": outcome.ran, "cached": outcome.cached, "seconds": round(outcome.seconds, 3),
        "items_per_second": outcome.items_per_second, "concurrency": options.concurrency,
        "rpm": options.requests_per_minute, "usage": usage, "usage_this_run": outcome.usage,
        "cost_usd": estimate_cost(outcome.backend, outcome.model, usage),
        "cost_note": "approximate list prices (assistant/evaluation/costs.py); unknown model -> null",
        "notes": notes, "scoring": SCORING,
    }
