"""`anomaly-chat eval DATASET --format ...`: ACC/AUROC/AUPR on a labelled data set, per class and strategy.

Exit codes: 0 done, 2 bad input (missing folder, unknown format, class or strategy), 1 backend
failure (the results finished so far are kept; rerun the same command to resume).
"""

from __future__ import annotations

from pathlib import Path

from assistant.commands.ask import add_backend_flags, backend_from
from assistant.commands.common import open_kb, print_json
from tools.errors import BackendError, InputError

FORMATS = "mvtec | mvtec3d | loco | visa | folder | nab"


def register(sub) -> None:
    parser = sub.add_parser("eval", help="evaluate on a labelled data set (the paper's ACC/AUROC/AUPR table)")
    parser.add_argument("dataset", help="folder of the data set")
    parser.add_argument("--format", required=True, help=f"data set layout: {FORMATS}")
    parser.add_argument("--classes", nargs="+", metavar="CLASS", help="only these classes (spaces or commas)")
    parser.add_argument("--strategies", help="comma-separated prompt strategies, e.g. naive,rules+reference; "
                        "'paper' = the paper's ablation set (default: the configured strategy)")
    parser.add_argument("--shots", type=int, default=1, help="reference normals per query (default 1)")
    parser.add_argument("--ref-choice", default="nearest", choices=["nearest", "first"], help="nearest (most similar training normals, default) | first")
    add_backend_flags(parser)
    parser.add_argument("--concurrency", type=int, default=4, help="analyses in parallel (default 4)")
    parser.add_argument("--rpm", type=float, help="start at most this many analyses per minute (rate limit)")
    parser.add_argument("--limit", type=int, help="at most N test items per class (seeded, stratified: each class keeps its "
                        "share of anomalies)")
    parser.add_argument("--out", help="results folder (default eval-results/<dataset>-<format>); rerun to resume")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling and anything random (default 0)")
    parser.add_argument("--peers", metavar="DIR", help="nab: a NAB results folder (<detector>/<group>/<detector>_<file>.csv) "
                        "whose detectors are scored beside ours on the same series")
    parser.add_argument("--thresholds", metavar="FILE", help="nab: NAB's thresholds.json for the peers (default: "
                        "config/thresholds.json beside --peers, or in the data set)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _names(values) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def strategies_from(text: str | None, default: str) -> list[str]:
    """The strategies asked for, canonical; 'paper' expands to the paper's ablation set."""
    from assistant.evaluation.runner import strategy_names
    from assistant.prompts import PAPER_STRATEGIES

    names = []
    for name in _names([text or default]):
        names += list(PAPER_STRATEGIES) if name.lower() == "paper" else [name]
    return strategy_names(names)


def _check_numbers(args) -> None:
    if args.concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    if args.shots < 0:
        raise InputError("--shots must be 0 or more")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    if args.rpm is not None and args.rpm <= 0:
        raise InputError("--rpm must be more than 0")
    if (args.peers or args.thresholds) and args.format.strip().lower() != "nab":
        raise InputError("--peers and --thresholds apply to --format nab only")


def run(args) -> int:
    from assistant.evaluation.datasets import load_dataset
    from assistant.evaluation.evaluate import evaluate
    from assistant.evaluation.nab_corpus import NabOptions
    from assistant.evaluation.runner import RunOptions

    _check_numbers(args)
    settings, backend = backend_from(args)
    strategies = strategies_from(args.strategies, settings.strategy)
    dataset = load_dataset(args.dataset, args.format, _names(args.classes), limit=args.limit, seed=args.seed)
    options = RunOptions(strategies, args.shots, args.ref_choice, args.concurrency, args.rpm, args.seed,
                         progress=not args.quiet)
    out = Path(args.out) if args.out else Path("eval-results") / f"{dataset.root.name}-{dataset.format}"
    try:
        nab_options = NabOptions(Path(args.peers) if args.peers else None, Path(args.thresholds) if args.thresholds else None)
        result = evaluate(dataset, settings, open_kb(settings), options, out, backend=backend, nab_options=nab_options)
    except BackendError as exc:
        raise BackendError(f"{exc} (the results finished so far are kept in {out / 'results.jsonl'}; "
                           "rerun the same command to resume)") from exc
    if args.json:
        extra = {"nab": {"corpus": result.nab.corpus, "groups": result.nab.groups}} if result.nab else {}
        print_json({"out": str(result.out_dir), "run": result.info, "metrics": _summary(result.metrics), **extra})
    else:
        print(format_summary(result))
    return 0


def _summary(table: dict) -> dict:
    keep = ("n", "acc", "auroc", "aupr", "undecided", "unparsed", "error", "excluded", "answered_only",
            "ranked_source", "score_sources", "mapped", "neutral")
    localised = ("boxes_checked", "box_hits", "pixel_auroc", "pixel_items")  # when the data set has masks
    return {s: {"mean": r["mean"], "pooled": {k: r["pooled"][k] for k in (*keep, *localised) if k in r["pooled"]}}
            for s, r in table.items()}


def format_summary(result) -> str:
    """A short text table: per strategy, mean and pooled ACC/AUROC/AUPR (every item ranked), the mean
    answered-only AUROC beside them, and the answers without a verdict."""
    from assistant.evaluation.report import fmt

    info = result.info
    lines = [f"{info['dataset']} ({info['format']}), {info['items']} items, backend {info['backend']}/{info['model']}: "
             f"{info['ran']} analysed now, {info['cached']} cached, {info['seconds']:.1f} s",
             f"{'strategy':<28} {'mean ACC':>8} {'AUROC':>6} {'AUPR':>6} | {'pooled ACC':>10} {'AUROC':>6} {'AUPR':>6}"
             f" | {'answered-only AUROC':>19} | no verdict | ranked source"]
    for strategy, values in result.metrics.items():
        mean, pooled = values["mean"], values["pooled"]
        missing = pooled["undecided"] + pooled["unparsed"] + pooled["error"]
        lines.append(f"{strategy:<28} {fmt(mean['acc']):>8} {fmt(mean['auroc']):>6} {fmt(mean['aupr']):>6} | "
                     f"{fmt(pooled['acc']):>10} {fmt(pooled['auroc']):>6} {fmt(pooled['aupr']):>6} | "
                     f"{fmt(mean['answered_only']['auroc']):>19} | {missing:>10} | {pooled['ranked_source'] or '–'}")
    cost = info["cost_usd"]
    lines.append("cost: " + ("none (offline backend)" if info["backend"] == "offline"
                             else "unknown (model not in the price table)" if cost is None
                             else f"about ${cost:.4f} (approximate)"))
    if result.nab is not None:
        from assistant.evaluation.nab_report import table_text

        lines.append(table_text(result.nab))
    lines.append(f"report: {result.out_dir / 'report.md'}")
    return "\n".join(lines)
