"""Speed of the knowledge base: rule lookup and semantic search among 10,000 rules, choosing 4
reference normals among 1,000, and the text embedder's cold load and per-rule cost.

    .venv/bin/python benchmarks/bench_knowledge.py [--rules 10000] [--references 1000] [--server]
        [--out benchmarks/results/knowledge.md]

Goals (embedded store): rules(class) and search_rules p50 <= 20 ms; nearest_references(k=4) <= 50 ms.
Bulk data goes in with batch embeddings (add_rules, import_references), so a run takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PARTS = ["thread", "head", "rim", "label", "cap", "seal", "weld seam", "solder joint", "edge", "surface", "lead",
         "tooth", "clip", "gasket", "connector"]
QUALITIES = ["is continuous and undamaged", "shows no scratches", "has an even colour", "sits centred",
             "is present exactly once", "is free of dirt", "is straight", "has no cracks", "is fully filled",
             "is aligned with the housing"]


def rule_text(i: int) -> str:
    """A distinct, plausible rule text (distinct, so no embedding comes from the cache)."""
    return f"The {PARTS[i % len(PARTS)]} {QUALITIES[(i // len(PARTS)) % len(QUALITIES)]} on part variant {i}."


def timed(operation, repeat: int) -> list[float]:
    """Milliseconds per call of operation(i) for i in range(repeat)."""
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        operation(i)
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> dict:
    return {"p50": statistics.median(times), "p90": float(np.percentile(times, 90)), "n": len(times)}


def cold_load_seconds(runs: int) -> list[float]:
    """Import + load of the bundled model in a fresh process, as the UI's first rule search sees it."""
    code = ("import time; t = time.perf_counter(); from knowledge.embedding import load_model; load_model(); "
            "print(time.perf_counter() - t)")
    return [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split()[-1]) for _ in range(runs)]


def embedding_costs(repeat: int) -> dict:
    from knowledge.embedding import embed_texts

    embed_texts(["warm up"])
    single = timed(lambda i: embed_texts([f"single query number {i} about a bent lead"]), repeat)
    texts = [f"batch rule number {i}: the rim is round and unbroken" for i in range(512)]
    start = time.perf_counter()
    embed_texts(texts)
    batch_ms = (time.perf_counter() - start) * 1000 / len(texts)
    return {"single": summary(single), "batch_per_text_ms": batch_ms}


def fill_rules(kb, count: int, classes: int, offset: int) -> float:
    """Store count rules spread over classes; returns seconds."""
    start = time.perf_counter()
    per_class = count // classes
    for c in range(classes):
        kb.add_rules(f"bench class {c}", [rule_text(offset + c * per_class + j) for j in range(per_class)])
    return time.perf_counter() - start


def make_reference_folder(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        base = rng.integers(30, 220, 3)
        noise = rng.integers(-25, 25, (48, 48, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(folder / f"{i:04d}.png")


def query_images(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 255, (64, 64, 3)).astype(np.uint8)) for _ in range(count)]


def bench_store(kb, n_rules: int, n_refs: int, workdir: Path, offset: int = 0) -> dict:
    """Fill a store and time the lookups; offset keeps texts new across runs (no cache hits)."""
    classes = max(1, n_rules // 100)
    results = {"fill_rules_s": fill_rules(kb, n_rules, classes, offset)}
    names = [f"bench_class_{c}" for c in range(classes)]
    rng = random.Random(0)
    kb.rules(names[0])
    results["rules"] = summary(timed(lambda i: kb.rules(rng.choice(names)), 300))
    queries = [f"does the {PARTS[i % len(PARTS)]} look damaged in sample {offset + i}" for i in range(200)]
    kb.search_rules("warm up the model", k=5)
    results["search"] = summary(timed(lambda i: kb.search_rules(queries[i], k=5), 100))
    results["search_in_class"] = summary(timed(lambda i: kb.search_rules(queries[100 + i], k=5,
                                                                         class_name=rng.choice(names)), 100))
    make_reference_folder(workdir / "refs", n_refs)
    start = time.perf_counter()
    kb.import_references(workdir / "refs", "bench refs")
    results["fill_refs_s"] = time.perf_counter() - start
    images = query_images(100)
    kb.nearest_references("bench refs", images[0], 4)
    results["nearest"] = summary(timed(lambda i: kb.nearest_references("bench refs", images[i], 4), 100))
    results["suggest"] = summary(timed(lambda i: kb.suggest_classes(images[i], 3), 100))
    return results


def start_server(folder: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([str(Path(sys.executable).parent / "chroma"), "run", "--path", str(folder),
                                "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1):
                return process, f"http://127.0.0.1:{port}/?database=bench"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("chroma server did not start")


def run(args) -> dict:
    from knowledge.store import KnowledgeBase

    report = {"cold_load_s": cold_load_seconds(3), "embedding": embedding_costs(50)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        kb = KnowledgeBase.open(tmp / "embedded")
        report["first_open_s"] = time.perf_counter() - start
        start = time.perf_counter()
        KnowledgeBase.open(tmp / "embedded")
        report["reopen_ms"] = (time.perf_counter() - start) * 1000
        report["embedded"] = bench_store(kb, args.rules, args.references, tmp / "work_embedded")
        if args.server:
            server, url = start_server(tmp / "server")
            try:
                report["server"] = bench_store(KnowledgeBase.open(tmp / "files", chroma_url=url), args.rules,
                                               args.references, tmp / "work_server", offset=10 * args.rules)
            finally:
                server.terminate()
                server.wait(timeout=10)
    return report


def markdown(report: dict, args) -> str:
    def row(label, stats, goal=""):
        return f"| {label} | {stats['p50']:.1f} | {stats['p90']:.1f} | {stats['n']} | {goal} |"

    lines = [
        "# Knowledge base benchmark", "",
        f"`{' '.join(['.venv/bin/python', 'benchmarks/bench_knowledge.py', *sys.argv[1:]])}` on "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (the machine was shared).", "",
        f"Store: {args.rules:,} rules in {max(1, args.rules // 100)} classes, {args.references:,} reference "
        "normals in one class. Times per call in milliseconds; each query text is new (no embedding cache hit).", ""]
    for mode in ("embedded", "server"):
        if mode not in report:
            continue
        r = report[mode]
        lines += [f"## {mode.capitalize()} Chroma", "", "| operation | p50 ms | p90 ms | calls | goal (p50) |",
                  "|---|---|---|---|---|",
                  row("rules(class)", r["rules"], "<= 20 ms" if mode == "embedded" else ""),
                  row("search_rules(text, k=5)", r["search"], "<= 20 ms" if mode == "embedded" else ""),
                  row("search_rules(text, k=5, class_name)", r["search_in_class"]),
                  row(f"nearest_references(class, image, 4) among {args.references:,}", r["nearest"],
                      "<= 50 ms" if mode == "embedded" else ""),
                  row("suggest_classes(image, 3)", r["suggest"]), "",
                  f"Bulk insert: {args.rules:,} rules in {r['fill_rules_s']:.1f} s (batch embeddings); "
                  f"{args.references:,} references in {r['fill_refs_s']:.1f} s.", ""]
    emb = report["embedding"]
    lines += ["## Text embedder (all-MiniLM-L6-v2, CPU)", "",
              f"- cold load in a fresh process (import + load), median of {len(report['cold_load_s'])}: "
              f"{statistics.median(report['cold_load_s']):.1f} s",
              f"- one rule or query text: p50 {emb['single']['p50']:.1f} ms, p90 {emb['single']['p90']:.1f} ms",
              f"- in a batch of 512: {emb['batch_per_text_ms']:.2f} ms per text",
              f"- first open of a new store (seeding, model already loaded): {report['first_open_s']:.1f} s; "
              f"reopen: {report['reopen_ms']:.0f} ms", "",
              "## How it was measured", "",
              "- One process, `time.perf_counter()` around each public call (`KnowledgeBase.rules`, `search_rules`, "
              "`nearest_references`, `suggest_classes`); p50 is the median of the calls, p90 the 90th percentile.",
              "- Rules: synthetic distinct texts, stored with `add_rules` (one batch of embeddings per class); "
              "`rules(class)` picks a random class each call; every search uses a new query text, so each "
              "includes embedding the query (about 8 ms of it).",
              "- References: synthetic 48x48 PNGs imported with `import_references`; each query is a new random "
              "64x64 image, so each call includes computing its descriptor.",
              "- Server: a `chroma run` on loopback started by the script, its own texts (no cache hits).",
              "- Cold load: three fresh processes, each timing `from knowledge.embedding import load_model; "
              "load_model()` (torch import included); the median is shown.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--references", type=int, default=1_000)
    parser.add_argument("--server", action="store_true", help="also measure against a `chroma run` server")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "knowledge.md"))
    args = parser.parse_args()
    text = markdown(run(args), args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
