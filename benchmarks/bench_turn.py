"""One offline analysis turn (load, retrieve, expert, verdict) through the Session, as `ask` runs it.
A benchmark, not a test.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_turn.py [--data ../shared/data] [--queries 6]

A fresh data directory gets 8 stored reference normals of one class (jittered copies of a real
VisA normal photograph, about 900 px); then each query (another jittered copy, or one with a
pasted defect) is inspected with the offline backend and the 4 nearest references, each in a new
Session as `anomaly-chat ask` does. The first turn is cold in the vision expert (no reference
features cached yet; the models are loaded before the clock starts, as the app's background
warm-up does). After one pass over all queries, every reference has been used; the second pass
gives the warm figures: a new query against references whose features are cached. Wall and CPU
seconds of this process (medians), and the wall time of the vision expert's step alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_expert import normal_photographs  # noqa: E402

from assistant.config import load_settings  # noqa: E402
from assistant.session import Session  # noqa: E402
from assistant.warmup import warm_up  # noqa: E402
from tests.helpers.defects import add_defect, jitter  # noqa: E402

CLASS = "pcb1"


def turn_seconds(session: Session, query: Path) -> tuple[float, float, float]:
    """(wall, CPU, wall of the vision expert's step) of one inspection."""
    wall, cpu, expert = time.perf_counter(), time.process_time(), 0.0
    for event in session.send("is anything wrong?", [str(query)], class_name=CLASS, references=4):
        if event.kind == "step" and event.status == "done" and "Vision expert" in event.title:
            expert = event.duration_s
    return time.perf_counter() - wall, time.process_time() - cpu, expert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--queries", type=int, default=8)
    args = parser.parse_args()
    normal = normal_photographs(args.data).get(CLASS)
    if normal is None:
        print(f"no {CLASS} photograph under {args.data}; skipping")
        return
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({"home": tmp, "backend": "offline"}, env={})
        warm_up(settings, demo=False)  # what the app's background thread loads at start
        from assistant.commands.common import open_kb

        kb = open_kb(settings)
        for i in range(8):
            path = Path(tmp) / f"ref{i}.png"
            jitter(normal, 100 + i).save(path)
            kb.add_reference(CLASS, path)
        queries = []
        for i in range(args.queries):
            image = jitter(normal, 200 + i)
            image = add_defect(image, "spot", i)[0] if i % 2 else image
            queries.append(Path(tmp) / f"query{i}.png")
            image.save(queries[-1])
        cold = turn_seconds(Session(settings, kb), queries[0])
        for query in queries[1:]:  # until every stored reference has been among the nearest four once
            turn_seconds(Session(settings, kb), query)
        warm = [turn_seconds(Session(settings, kb), query) for query in queries]
    print(f"cold turn (no reference features cached yet): {cold[0]:.2f} s wall, {cold[1]:.2f} s CPU, "
          f"vision expert step {cold[2]:.2f} s")
    print(f"warm turns (median of {len(warm)}; new query, reference features cached): "
          f"{statistics.median(w[0] for w in warm):.3f} s wall, {statistics.median(w[1] for w in warm):.3f} s CPU, "
          f"vision expert step {statistics.median(w[2] for w in warm):.3f} s wall")


if __name__ == "__main__":
    main()
