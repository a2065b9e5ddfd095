"""Cold start of the chat app: seconds from `python ui.py` to a served page. A benchmark, not a test.

    .venv/bin/python benchmarks/bench_ui_start.py [--runs 3] [--first-answer] [--out benchmarks/results/ui.md]

Each run starts `ui.py` in a fresh data directory (so the demo files are drawn and nothing is
cached by the app), polls http://127.0.0.1:PORT/ until it answers 200, and stops the process.
With --first-answer, one more run also times the first inspection through the API (the offline
backend; this includes opening the knowledge base and loading the embedding model, which the app
does lazily, after the page is served). Goal: page served in at most 10 s.
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
TIMEOUT_S = 120.0


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


def start_app(home: Path) -> tuple[subprocess.Popen, str, float]:
    """Start ui.py; returns the process, its URL and the seconds until the page was served."""
    port = _free_port()
    env = {**os.environ, "ANOMALY_CHAT_HOME": str(home), "GRADIO_TEMP_DIR": str(home / "gradio"),
           "GRADIO_ANALYTICS_ENABLED": "False", "ANOMALY_CHAT_BACKEND": "offline"}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "ui.py"), "--port", str(port)], cwd=ROOT, env=env,
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


def first_answer_s(url: str, home: Path) -> float:
    """Seconds for the first inspection of the demo part through the API."""
    sys.path.insert(0, str(ROOT))
    from gradio_client import Client, handle_file

    from assistant.app.demo_data import DEMO_CLASS, ensure_demo_data

    demo = ensure_demo_data(home)
    client = Client(url, verbose=False, download_files=False)
    message = {"text": "Is anything wrong?", "files": [handle_file(str(p)) for p in (demo.defective, *demo.references)]}
    started = time.perf_counter()
    client.predict(message, DEMO_CLASS, ["class information", "reference images", "expert evidence"], 2,
                   api_name="/chat")
    return time.perf_counter() - started


def report(times: list[float], answer: float | None) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = ["# Chat app cold start", "",
             "`python ui.py` in a fresh data directory until `GET /` answers 200 "
             f"(benchmarks/bench_ui_start.py, goal ≤ {GOAL_S:.0f} s).", "",
             f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"load average {load:.1f} at the end (the cores are shared)",
             f"- runs: {len(times)}: " + ", ".join(f"{t:.2f} s" for t in times),
             f"- **median {statistics.median(times):.2f} s**, best {min(times):.2f} s, worst {max(times):.2f} s "
             f"({'within' if statistics.median(times) <= GOAL_S else 'over'} the goal)"]
    if answer is not None:
        lines.append(f"- first inspection after start (opens the knowledge base, loads the embedding model, runs "
                     f"the vision expert; offline backend): {answer:.1f} s")
    lines += ["", "Heavy parts load lazily: the knowledge base (Chroma, the embedding model) opens at the first "
              "page load or message, open3d and torch only when a file needs them.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--first-answer", action="store_true", help="also time the first inspection (one more run)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ui.md"))
    args = parser.parse_args()
    times, answer = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            process, _, seconds = start_app(Path(tmp) / f"run{run}")
            stop(process)
            times.append(seconds)
            print(f"run {run + 1}: page served after {seconds:.2f} s", flush=True)
        if args.first_answer:
            home = Path(tmp) / "answer"
            process, url, _ = start_app(home)
            try:
                answer = first_answer_s(url, home)
            finally:
                stop(process)
            print(f"first inspection: {answer:.1f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report(times, answer), encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
