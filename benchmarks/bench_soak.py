"""Soak: simulated users chat with one app at the same time for a fixed number of turns. A benchmark, not a test.

    .venv/bin/python benchmarks/bench_soak.py [--users 8] [--turns 6] [--rounds 4] [--out benchmarks/results/soak.md]

The app runs as its own process (`python ui.py`, offline backend, a fresh data directory), so its
memory can be sampled: RSS from /proc every 0.25 s. After one warm-up inspection (which opens the
knowledge base and loads the embedding model), each round starts `--users` new users at once, each
a gradio_client.Client (its own conversation) in its own thread. A user's turns alternate: an
inspection of its own picture (named after the user, sent with one reference normal), then a
follow-up question. Checked: no turn fails (an exception or a ⚠️ line in the chat); every user's
history holds only its own messages and files. Reported: p50/p95 turn latency (all turns,
inspections, follow-ups) and RSS after the warm-up, after each round and at its peak, for three
setups (SETUPS): conversations left open with glibc's default allocator and with
MALLOC_ARENA_MAX=2, and conversations ended with "New conversation". tests/test_soak.py runs a
small round (2 users x 2 turns) in the suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.app.chat_view import as_read  # noqa: E402 - needs ROOT on the path
from benchmarks.bench_ui_start import TIMEOUT_S, _free_port, _serves, stop  # noqa: E402 - needs ROOT on the path
from tests.helpers.defects import add_defect, jitter, textured_part  # noqa: E402

CLASS_NAME = "soak part"
PARTS = ["class information", "reference images", "expert evidence"]
FOLLOW_UPS = ["why?", "where exactly is it?", "compared to what?"]
SAMPLE_EVERY_S = 0.25
ARENAS = {"MALLOC_ARENA_MAX": "2"}  # glibc keeps up to 8 malloc arenas per core for the app's many threads
SETUPS = [("open, glibc default", {}, False), ("open, MALLOC_ARENA_MAX=2", ARENAS, False),
          ("closed, MALLOC_ARENA_MAX=2", ARENAS, True)]  # (label, app environment, users end their conversation)


@dataclass
class UserRun:
    """One simulated user's turns: (kind, seconds) per turn, the failures, and its history at the end."""

    user: str
    latencies: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)


def make_pictures(folder: Path, users: list[str], turns: int) -> dict[str, list[Path]]:
    """Per user: a reference normal, then one picture per inspection turn (every other one defective)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = textured_part(size=256, seed=4)
    pictures: dict[str, list[Path]] = {}
    for u, user in enumerate(users):
        paths = [folder / f"{user}-reference.png"] + [folder / f"{user}-turn{t}.png" for t in range(0, turns, 2)]
        jitter(base, seed=1000 + u).save(paths[0])
        for t, path in enumerate(paths[1:]):
            picture = jitter(base, seed=2000 + 100 * u + t)
            (add_defect(picture, "spot", seed=u + t, scale=1.5)[0] if t % 2 == 0 else picture).save(path)
        pictures[user] = paths
    return pictures


def _turn(client, text: str, files: list[Path]) -> list[dict]:
    from gradio_client import handle_file

    from assistant.app.chat_view import normalise_history

    message = {"text": text, "files": [handle_file(str(f)) for f in files]}
    chat, _box = client.predict(message, CLASS_NAME, PARTS, 1, api_name="/chat")
    return normalise_history(chat)


def simulate_user(url: str, user: str, turns: int, pictures: list[Path], start: threading.Barrier,
                  close: bool = False) -> UserRun:
    """One user's conversation: inspections of its own pictures and follow-ups, each timed; close: then
    "New conversation", as a person who is done would press."""
    from gradio_client import Client

    run = UserRun(user)
    client = Client(url, verbose=False, download_files=False)
    start.wait()
    for turn in range(turns):
        inspect = turn % 2 == 0
        text = f"[{user}] " + ("is anything wrong with this part?" if inspect else FOLLOW_UPS[turn // 2 % 3])
        files = [pictures[1 + turn // 2], pictures[0]] if inspect else []
        started = time.perf_counter()
        try:
            run.history = _turn(client, text, files)
        except Exception as exc:  # noqa: BLE001 - a failed turn is counted, the soak goes on
            run.errors.append(f"turn {turn}: {type(exc).__name__}: {exc}")
            continue
        run.latencies.append(("inspection" if inspect else "follow-up", time.perf_counter() - started))
        reply = run.history[-1]["text"] if run.history else ""
        if reply.startswith("⚠️"):
            run.errors.append(f"turn {turn}: {reply}")
    if close:
        client.predict(api_name="/new_conversation")
    return run


def run_round(url: str, users: list[str], turns: int, pictures: dict[str, list[Path]],
              close: bool = False) -> list[UserRun]:
    """All users at once, each in its own thread; their runs in user order."""
    start = threading.Barrier(len(users))
    runs: dict[str, UserRun] = {}

    def work(user: str) -> None:
        runs[user] = simulate_user(url, user, turns, pictures[user], start, close)

    threads = [threading.Thread(target=work, args=(user,), name=f"soak-{user}") for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [runs[user] for user in users]


def leaks(runs: list[UserRun]) -> list[str]:
    """Messages or files of one user found in another user's history (empty: no leakage)."""
    found = []
    for run in runs:
        others = [r.user for r in runs if r.user != run.user]
        for message in run.history:
            text = as_read(message["text"])  # the chat shows brackets escaped (Markdown links are shown as text)
            if message["role"] == "user" and not text.startswith(f"[{run.user}]"):
                found.append(f"{run.user} sees a message it did not write: {text[:60]!r}")
            seen = " ".join([text, *message["files"]])
            found += [f"{run.user} sees something of {o}" for o in others if f"[{o}]" in seen or f"{o}-" in seen]
    return found


class RssSampler:
    """Samples a process's resident memory (MB) in a background thread."""

    def __init__(self, pid: int):
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def now(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            kilobytes = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        return kilobytes / 1024

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.samples.append(self.now())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


@dataclass
class Soak:
    """A whole soak: its rounds and the memory samples (MB)."""

    users: int
    turns: int
    setup: str = "open, glibc default"
    rounds: list[list[UserRun]] = field(default_factory=list)
    rss_warm: float = 0.0
    rss_after_round: list[float] = field(default_factory=list)
    rss_peak: float = 0.0
    seconds: float = 0.0

    @property
    def runs(self) -> list[UserRun]:
        return [run for one in self.rounds for run in one]

    def latencies(self, kind: str | None = None) -> list[float]:
        return [s for run in self.runs for k, s in run.latencies if kind in (None, k)]


def start_app(home: Path, extra_env: dict) -> tuple[subprocess.Popen, str]:
    """`python ui.py` on a free port with the offline backend; its output goes to home/app.log."""
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, "ANOMALY_CHAT_HOME": str(home), "GRADIO_TEMP_DIR": str(home / "gradio"),
           "GRADIO_ANALYTICS_ENABLED": "False", "ANOMALY_CHAT_BACKEND": "offline", **extra_env}
    with open(home / "app.log", "wb") as log:  # a file, not a pipe: a full pipe would stall the app
        process = subprocess.Popen([sys.executable, str(ROOT / "ui.py"), "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + TIMEOUT_S
    while not _serves(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"ui.py did not serve: {(home / 'app.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return process, url


def soak(home: Path, users: int, turns: int, rounds: int, setup: tuple[str, dict, bool]) -> Soak:
    """Start the app, warm it up, run the rounds while sampling its memory, stop it."""
    label, extra_env, close = setup
    process, url = start_app(home, extra_env)
    result = Soak(users, turns, label)
    try:
        sampler = RssSampler(process.pid)
        run_round(url, ["warmup"], 1, make_pictures(home / "pictures", ["warmup"], 1))
        result.rss_warm = sampler.now()
        started = time.perf_counter()
        with sampler:
            for number in range(1, rounds + 1):
                names = [f"user{number}_{i}" for i in range(1, users + 1)]
                pictures = make_pictures(home / "pictures", names, turns)
                result.rounds.append(run_round(url, names, turns, pictures, close))
                result.rss_after_round.append(sampler.now())
                print(f"{label}, round {number}: RSS {result.rss_after_round[-1]:.0f} MB", flush=True)
        result.seconds = time.perf_counter() - started
        result.rss_peak = max(sampler.samples + result.rss_after_round)
    finally:
        stop(process)
    return result


def _latency_rows(result: Soak) -> list[str]:
    rows = []
    for kind, label in ((None, "all"), ("inspection", "inspections"), ("follow-up", "follow-ups")):
        values = result.latencies(kind)
        rows.append(f"| {result.setup} | {label} | {len(values)} | {percentile(values, 50):.2f} s | "
                    f"{percentile(values, 95):.2f} s | {max(values):.2f} s |")
    return rows


def _memory_rows(results: list[Soak]) -> list[str]:
    rows = [f"| {' | '.join(['RSS of the app process, MB', *(r.setup for r in results)])} |",
            "|---" * (len(results) + 1) + "|", "| after the warm-up inspection | " + " | ".join(
                f"{r.rss_warm:.0f}" for r in results) + " |"]
    rows += [f"| after round {i + 1} | " + " | ".join(f"{r.rss_after_round[i]:.0f}" for r in results) + " |"
             for i in range(len(results[0].rss_after_round))]
    rows.append("| **peak** | " + " | ".join(f"**{r.rss_peak:.0f}**" for r in results) + " |")
    rows.append("| growth per round after round 1 | " + " | ".join(
        f"{(r.rss_after_round[-1] - r.rss_after_round[0]) / max(1, len(r.rounds) - 1):+.0f}" for r in results) + " |")
    return rows


def report(results: list[Soak]) -> str:
    """The soak as Markdown for benchmarks/results/soak.md."""
    first, load = results[0], os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    errors = [e for r in results for run in r.runs for e in run.errors]
    leaked = [leak for r in results for one in r.rounds for leak in leaks(one)]
    lines = [
        "# Soak: simultaneous users", "",
        f"`benchmarks/bench_soak.py --users {first.users} --turns {first.turns} --rounds {len(first.rounds)}`: "
        "the app as its own process (`python ui.py`, offline backend, fresh data directory), each user a "
        "gradio_client.Client in its own thread, the users of a round starting together; turns alternate an "
        "inspection of the user's own picture (with one reference normal) and a follow-up question. Three setups: "
        "users keep their conversations open (glibc's default allocator, then MALLOC_ARENA_MAX=2), and users "
        "press New conversation when done (MALLOC_ARENA_MAX=2).", "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores (shared with other jobs), Python "
        f"{platform.python_version()}, load average {load:.1f} at the end",
        "- turns answered: " + ", ".join(f"{len(r.latencies())} in {r.seconds:.0f} s ({r.setup})" for r in results),
        f"- **failed turns: {len(errors)}**" + (f" (first: {errors[0][:200]})" if errors else ""),
        f"- **cross-session leakage: {len(leaked)}**" + (f" (first: {leaked[0]})" if leaked else
                                                          " (every history holds only its own messages and files)"),
        "", "| setup | turns | n | p50 | p95 | max |", "|---|---|---|---|---|---|",
        *(row for r in results for row in _latency_rows(r)), "",
        "Latency is wall time per turn as a user sees it, queueing included (the app runs at most "
        f"{max(2, os.cpu_count() or 2)} events at once).", "", *_memory_rows(results), "",
        "An open conversation keeps its session (pictures encoded for the model, the last evidence) until it has "
        "been idle for 8 hours (`ui.CONVERSATION_IDLE_S`) or its browser tab has been closed for an hour; the "
        "'closed' setup shows what stays once conversations end.", "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "soak.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [soak(Path(tmp) / f"home{i}", args.users, args.turns, args.rounds, setup)
                   for i, setup in enumerate(SETUPS)]
    text = report(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
