"""Cold start of the chat app and its first inspection. A benchmark, not a test.

    .venv/bin/python benchmarks/bench_ui_start.py [--runs 3] [--first-answer [--answer-runs 3] [--delay 10]]
        [--app DIR] [--out benchmarks/results/ui.md]

Each start runs `ui.py` (offline backend) in a data directory, polls http://127.0.0.1:PORT/ until it
answers 200, and stops the process. Without --first-answer only the page is timed, in fresh data
directories (goal: served in at most 10 s). With --first-answer, each answer run also sends the
first inspection through the API the moment the page is served (the scratched demo bracket with
its three normal pictures, class "demo bracket", as the page's first example; the background
warm-up is then still running), in four cases:

- new data directory: the app's very first start (the store is created and seeded, the demo drawn);
- restart: the same data directory started again (what every later start is);
- own references: a restart, with three reference pictures the app has never seen (the vision
  expert encodes each with its stand-ins);
- delayed: a new data directory, the inspection sent --delay seconds after the page was served.

`--app DIR` starts the ui.py of another checkout (an export of an older commit) with this
environment, to measure before and after with the same script. The second inspection of the same part in the same app is timed too. For each it gives the wall
seconds until the answer and the app process's CPU seconds in that time (all its threads, from
/proc: the background warm-up included), with the machine's load average, as the cores are shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 10.0
ANSWER_GOAL_S = 3.0
TIMEOUT_S = 120.0
CASES = ("new data directory", "restart", "own references", "delayed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return reply.status == 200 and b"<html" in reply.read(4096).lower()
    except OSError:
        return False


APP = ROOT


def start_app(home: Path) -> tuple[subprocess.Popen, str, float]:
    """Start ui.py (of APP); returns the process, its URL and the seconds until the page was served."""
    port = _free_port()
    env = {**os.environ, "ANOMALY_CHAT_HOME": str(home), "GRADIO_TEMP_DIR": str(home / "gradio"),
           "GRADIO_ANALYTICS_ENABLED": "False", "ANOMALY_CHAT_BACKEND": "offline"}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(APP / "ui.py"), "--port", str(port)], cwd=APP, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    while not _serves(url):
        if process.poll() is not None:
            raise RuntimeError(f"ui.py exited with {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        if time.perf_counter() - started > TIMEOUT_S:
            stop(process)
            raise RuntimeError(f"no page within {TIMEOUT_S} s")
        time.sleep(0.05)
    return process, url, time.perf_counter() - started


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def inspect(url: str, files: list[Path], pid: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the app) of one inspection through the API."""
    sys.path.insert(0, str(ROOT))
    from gradio_client import Client, handle_file

    from assistant.app.demo_data import DEMO_CLASS

    client = Client(url, verbose=False, download_files=False)
    message = {"text": "Is anything wrong?", "files": [handle_file(str(p)) for p in files]}
    started, cpu = time.perf_counter(), cpu_seconds(pid)
    client.predict(message, DEMO_CLASS, ["class information", "reference images", "expert evidence"], 2,
                   api_name="/chat")
    return time.perf_counter() - started, cpu_seconds(pid) - cpu


def own_references(demo, folder: Path) -> list[Path]:
    """Three normal pictures of the demo part that the app has not seen (new photographs of it)."""
    from PIL import Image

    from tests.helpers.defects import jitter

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, source in enumerate(demo.references):
        paths.append(folder / f"own_normal_{i}.png")
        jitter(Image.open(source).convert("RGB"), 500 + i).save(paths[-1])
    return paths


def answer_run(tmp: Path, run: int, delay: float) -> dict[str, tuple[float, float]]:
    """One run of every case; case -> (wall, CPU) seconds of the first inspection."""
    sys.path.insert(0, str(ROOT))
    from assistant.app.demo_data import ensure_demo_data

    found, home = {}, tmp / f"answer{run}"
    process, url, _ = start_app(home)
    try:
        demo = ensure_demo_data(home)
        query = [demo.defective, *demo.references]
        found[CASES[0]] = inspect(url, query, process.pid)
        found["second inspection"] = inspect(url, query, process.pid)
        time.sleep(8)  # let the warm-up finish writing to the disk cache before the restart
    finally:
        stop(process)
    for case, files in ((CASES[1], query), (CASES[2], [demo.defective, *own_references(demo, home / "own")])):
        process, url, _ = start_app(home)
        try:
            found[case] = inspect(url, files, process.pid)
        finally:
            stop(process)
    process, url, _ = start_app(tmp / f"delayed{run}")
    try:
        time.sleep(delay)
        demo = ensure_demo_data(tmp / f"delayed{run}")
        found[CASES[3]] = inspect(url, [demo.defective, *demo.references], process.pid)
    finally:
        stop(process)
    return found


def report(times: list[float], answers: list[dict], delay: float) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = ["# Chat app cold start and first inspection", "",
             "`python ui.py` until `GET /` answers 200, then the first inspection through the API "
             f"(benchmarks/bench_ui_start.py; goals: page ≤ {GOAL_S:.0f} s, first inspection ≤ {ANSWER_GOAL_S:.0f} s).",
             "", f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) at the end (the cores are shared)",
             f"- page served, fresh data directory, {len(times)} runs: " + ", ".join(f"{t:.2f} s" for t in times),
             f"- **median {statistics.median(times):.2f} s**, best {min(times):.2f} s, worst {max(times):.2f} s "
             f"({'within' if statistics.median(times) <= GOAL_S else 'over'} the goal)"]
    if answers:
        lines += ["", f"First inspection (the scratched demo bracket and three normal pictures), sent the moment the "
                  f"page is served unless delayed; median of {len(answers)} runs (each run's figures in brackets); "
                  "CPU = seconds of the app process (all threads, the warm-up included) during the inspection:", "",
                  "| case | wall | CPU of the app |", "|---|---|---|"]
        for case in (*CASES, "second inspection"):
            walls, cpus = [a[case][0] for a in answers], [a[case][1] for a in answers]
            label = f"{case} ({delay:.0f} s after the page)" if case == "delayed" else case
            lines.append(f"| {label} | **{statistics.median(walls):.2f} s** ({', '.join(f'{w:.2f}' for w in walls)}) "
                         f"| {statistics.median(cpus):.2f} s |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--first-answer", action="store_true", help="also time the first inspection")
    parser.add_argument("--answer-runs", type=int, default=3)
    parser.add_argument("--delay", type=float, default=10.0, help="seconds before the delayed first inspection")
    parser.add_argument("--app", type=Path, default=ROOT, help="the checkout whose ui.py is started")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ui.md"))
    args = parser.parse_args()
    global APP
    APP = args.app.resolve()
    times, answers = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            process, _, seconds = start_app(Path(tmp) / f"run{run}")
            stop(process)
            times.append(seconds)
            print(f"run {run + 1}: page served after {seconds:.2f} s", flush=True)
        for run in range(args.answer_runs if args.first_answer else 0):
            answers.append(answer_run(Path(tmp), run, args.delay))
            print(f"answer run {run + 1}: " + ", ".join(f"{case} {wall:.2f} s (CPU {cpu:.2f} s)"
                                                        for case, (wall, cpu) in answers[-1].items()), flush=True)
    text = report(times, answers, args.delay)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
