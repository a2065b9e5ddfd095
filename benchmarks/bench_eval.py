"""Speed and offline results of the evaluation harness (assistant/evaluation). A benchmark, not a test.

    .venv/bin/python benchmarks/bench_eval.py [--data ../shared/data] [--items 200] [--concurrency 32]
        [--sequential 20] [--delay 1.0] [--skip-speed] [--skip-offline] [--write benchmarks/results/eval.md]

Sections:
- speed: the local OpenAI-protocol test server (tests/helpers/fake_openai.py) answers every request
  after --delay seconds. One run measures `--sequential` items one at a time (concurrency 1) and
  all `--items` at `--concurrency`; the ratio is the concurrent wall time over the one-at-a-time
  time for the same number of items (per-item sequential time x items; pass --sequential equal to
  --items to time them all one at a time instead of extrapolating).
- offline: the offline backend (vision expert) on the real samples in --data (never copied into the
  repository): visa_samples as a folder-like set with leave-one-out references, hazelnut_toy (its
  files linked into a temporary good/bad layout), and nab_dev (NAB format). Items per second and
  the metrics table of each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.config import load_settings  # noqa: E402
from assistant.evaluation.datasets import load_dataset  # noqa: E402
from assistant.evaluation.evaluate import evaluate  # noqa: E402
from assistant.evaluation.metrics import METRICS  # noqa: E402
from assistant.evaluation.report import fmt  # noqa: E402
from assistant.evaluation.runner import RunOptions  # noqa: E402


def open_kb(home: Path):
    from knowledge.store import KnowledgeBase

    return KnowledgeBase.open(load_settings({"home": str(home)}, env={}).kb_dir)


# ---- speed ------------------------------------------------------------------------------------
def use_png_level(level: int) -> None:
    """What-if only: encode prompt images with this zlib level instead of the session's (PIL's default 6).

    PNG encoding of the 768-px prompt images is most of the client's CPU time per analysis; this
    measures what a faster level would give, without changing the application.
    """
    import io

    from assistant.backends import base
    from tools.render.imageops import fit_long_side

    def from_pil(cls, image, label, long_side=None):
        image = fit_long_side(image, long_side) if long_side else image
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG", optimize=False, compress_level=level)
        return cls(buffer.getvalue(), label)

    base.EncodedImage.from_pil = classmethod(from_pil)


def serve_slow_model(delay: float, pipe) -> None:
    """In a child process (a real model is on another machine, not in this process's GIL): the fake
    OpenAI server answering after `delay`; sends its URL, then, when told to stop, its peak load."""
    from tests.helpers.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        server.set_default(None, delay=delay)
        pipe.send(server.url)
        pipe.recv()
        pipe.send({"max_in_flight": server.max_in_flight, "requests": len(server.requests)})


def speed(work: Path, kb, items: int, concurrency: int, sequential: int, delay: float) -> dict:
    """Wall time of `items` analyses at `concurrency` vs one at a time, against a server answering after `delay`."""
    import multiprocessing

    from tests.helpers.datasets import make_mvtec

    per_class = max(2, items // 4)
    root = make_mvtec(work / "speed_data", classes=("capsule", "pill", "transistor", "cable"), train=3,
                      good=per_class // 2, bad=per_class - per_class // 2, size=64)
    dataset = load_dataset(root, "mvtec")
    mine, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=serve_slow_model, args=(delay, theirs), daemon=True)
    server.start()
    try:
        settings = load_settings({"home": str(work / "home"), "backend": "openai",
                                  "openai_base_url": mine.recv() + "/v1"}, env={})
        one = _timed(dataset, settings, kb, work / "seq", 1, limit=sequential)
        many = _timed(dataset, settings, kb, work / "par", concurrency)
        mine.send("stop")
        in_flight = mine.recv()["max_in_flight"]
    finally:
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
    sequential_total = one["seconds"] / one["items"] * many["items"]
    return {"items": many["items"], "concurrency": concurrency, "delay": delay, "sequential_items": one["items"],
            "sequential_per_item": one["seconds"] / one["items"], "sequential_total": sequential_total,
            "concurrent_total": many["seconds"], "ratio": many["seconds"] / sequential_total,
            "cpu_per_item": many["cpu"] / many["items"],
            "max_in_flight": in_flight}


def _timed(dataset, settings, kb, out: Path, concurrency: int, limit: int | None = None) -> dict:
    if limit is not None and limit < len(dataset.items):
        dataset = load_dataset(dataset.root, dataset.format)
        dataset.items = dataset.items[:: max(1, len(dataset.items) // limit)][:limit]
    options = RunOptions(["rules+reference"], shots=1, ref_choice="nearest", concurrency=concurrency, progress=True)
    started, cpu = time.perf_counter(), time.process_time()
    evaluate(dataset, settings, kb, options, out)
    return {"items": len(dataset.items), "seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


# ---- offline, real samples ----------------------------------------------------------------------
def hazelnut_layout(data: Path, work: Path) -> Path:
    """hazelnut_toy's files linked (not copied) into <work>/hazelnut_toy/hazelnut/{good,bad}."""
    source = data / "hazelnut_toy"
    root = work / "hazelnut_toy"
    for name, folder in (("good.jpg", "good"), ("colour.jpg", "bad"), ("colour_mask.jpg", "bad"),
                         ("crack.jpg", "bad"), ("crack_mask.jpg", "bad")):
        target = root / "hazelnut" / folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(source / name)
    return root


def offline(data: Path, work: Path, kb, concurrency: int) -> list[dict]:
    """The offline backend on each real sample set present in `data`."""
    sets = [("visa_samples", data / "visa_samples", "folder", "rules+reference"),
            ("hazelnut_toy", hazelnut_layout(data, work) if (data / "hazelnut_toy").is_dir() else None, "folder",
             "rules+reference"),
            ("nab_dev", data / "nab_dev", "nab", "rules")]
    settings = load_settings({"home": str(work / "home"), "backend": "offline"}, env={})
    found = []
    for name, root, fmt_name, strategy in sets:
        if root is None or not root.is_dir():
            print(f"skipped {name}: not found", file=sys.stderr)
            continue
        options = RunOptions([strategy], shots=1, concurrency=concurrency, progress=True)
        result = evaluate(load_dataset(root, fmt_name), settings, kb, options, work / f"out_{name}")
        found.append({"name": name, "format": fmt_name, "strategy": strategy, "result": result})
    return found


# ---- output -------------------------------------------------------------------------------------
def speed_markdown(s: dict) -> list[str]:
    return ["## Speed: concurrent requests against a slow model", "",
            f"Local OpenAI-protocol test server answering every request after {s['delay']:.1f} s; "
            f"{s['items']} items, strategy rules+reference, 1 nearest reference each"
            + (f"; WHAT-IF: prompt images PNG-encoded at zlib level {s['png_level']} (the app uses 6)"
               if s.get("png_level") is not None else "") + ".", "",
            "| | items | wall time (s) |", "|---|---|---|",
            f"| one at a time (measured on {s['sequential_items']} items) | {s['sequential_items']} | "
            f"{s['sequential_per_item'] * s['sequential_items']:.1f} ({s['sequential_per_item']:.2f} s/item) |",
            f"| one at a time, {s['items']} items (per-item time x items) | {s['items']} | {s['sequential_total']:.1f} |",
            f"| concurrency {s['concurrency']} | {s['items']} | {s['concurrent_total']:.1f} |", "",
            f"Ratio concurrent / one-at-a-time: **{s['ratio']:.3f}** (goal <= 0.100); "
            f"most requests in flight at once: {s['max_in_flight']}; CPU time of this process per item "
            f"at concurrency {s['concurrency']}: {s['cpu_per_item'] * 1000:.0f} ms."]


def offline_markdown(found: list[dict]) -> list[str]:
    lines = ["## Offline backend on the real samples (../shared/data)", ""]
    for entry in found:
        result = entry["result"]
        info, table = result.info, result.metrics[entry["strategy"]]
        speed_text = f"{info['items_per_second']:.2f} items/s" if info["items_per_second"] else "all cached"
        lines += [f"### {entry['name']} ({entry['format']}), {info['items']} items, {speed_text}", "",
                  f"References: {info['references']}.", "",
                  "| class | n | ACC | AUROC | AUPR | answered-only AUROC | undecided | note |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, m in table["per_class"].items():
            lines.append(f"| {name} | {m['n']} | " + " | ".join(fmt(m[k]) for k in METRICS)
                         + f" | {fmt(m['answered_only']['auroc'])} | {m['undecided']} | {m['auroc_note'] or ''} |")
        mean, pooled = table["mean"], table["pooled"]
        lines.append("| **mean over classes** | | " + " | ".join(fmt(mean[k]) for k in METRICS)
                     + f" | {fmt(mean['answered_only']['auroc'])} | | |")
        lines.append(f"| pooled (all items) | {pooled['n']} | " + " | ".join(fmt(pooled[k]) for k in METRICS)
                     + f" | {fmt(pooled['answered_only']['auroc'])} | {pooled['undecided']} | {pooled['auroc_note'] or ''} |")
        c = pooled["confusion"]
        lines += ["", f"Pooled: TP {c['tp']}, FN {c['fn']}, FP {c['fp']}, TN {c['tn']}; without a verdict: "
                  f"{c['no_verdict_anomalous']} anomalous and {c['no_verdict_normal']} normal items (counted as wrong "
                  f"for ACC, ranked at the uninformative 0.5 for AUROC/AUPR); ranked score source: "
                  f"{pooled['ranked_source'] or 'none'}."]
        if pooled.get("windows"):
            w = pooled["windows"]
            lines += ["", f"Series windows: {w['hits']} of {w['labelled']} labelled windows hit, {w['false_alarms']} "
                      f"false alarms among {w['flagged']} flagged windows."]
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sequential", type=int, default=20, help="items timed one at a time")
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--offline-concurrency", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument("--write", type=Path, help="write the markdown results here")
    parser.add_argument("--png-level", type=int, help="what-if: PNG zlib level for prompt images (app: 6)")
    args = parser.parse_args()
    if args.png_level is not None:
        use_png_level(args.png_level)
    lines = ["# Evaluation harness: benchmark results", "",
             f"`{' '.join(['benchmarks/bench_eval.py', *sys.argv[1:]])}` on {os.cpu_count()} cores (shared).", ""]
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        work = Path(tmp)
        kb = open_kb(work / "home")
        if not args.skip_speed:
            measured = speed(work, kb, args.items, args.concurrency, args.sequential, args.delay)
            lines += speed_markdown({**measured, "png_level": args.png_level}) + [""]
        if not args.skip_offline:
            lines += offline_markdown(offline(args.data, work, kb, args.offline_concurrency))
    text = "\n".join(lines).rstrip() + "\n"
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
