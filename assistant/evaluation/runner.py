"""Runs every (item, strategy) of an evaluation through a Session, concurrently, resumably.

Each analysis gets a fresh Session (a Session holds conversation state); the backend, built once,
is shared by every worker thread (backends are thread-safe) and the knowledge base behind a lock. Results already in results.jsonl are skipped,
new ones are appended as soon as they finish, so a killed run resumes where it stopped. Retries live
in the backends: an item that still fails with a BackendError stops the run (exit 1) after the
analyses in flight are saved; an unreadable file is recorded as an error and counted.
"""

from __future__ import annotations

import copy
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from assistant import prompts
from assistant.evaluation import metrics
from assistant.evaluation.cache import ResultCache, result_key
from assistant.evaluation.costs import add_usage
from assistant.evaluation.datasets import EvalSet, Item
from assistant.evaluation.fingerprint import KnowledgePrints
from assistant.evaluation.pixels import localised_fields
from assistant.evaluation.references import ReferencePicker, default_view
from tools.errors import ConfigError, InputError


@dataclass
class RunOptions:
    strategies: list[str]
    shots: int = 1
    ref_choice: str = "nearest"
    concurrency: int = 4
    requests_per_minute: float | None = None
    seed: int = 0  # drew the --limit sample (local generators); the run itself reseeds no global generator
    progress: bool = True
    question: str = ""  # the paper's prompt has no question of its own


@dataclass
class RunOutcome:
    rows: list[dict]  # every result of this run's setup, cached ones included, sorted by key
    ran: int  # analyses done in this run
    cached: int  # analyses found in results.jsonl
    seconds: float
    usage: dict = field(default_factory=dict)  # tokens of the analyses done in this run
    backend: str = ""
    model: str = ""

    @property
    def items_per_second(self) -> float | None:
        return self.ran / self.seconds if self.ran and self.seconds > 0 else None


def strategy_names(texts) -> list[str]:
    """Canonical strategy names (`rules+class` -> `rules`), duplicates removed, order kept."""
    names: list[str] = []
    for text in texts:
        name = prompts.Strategy.parse(text).name
        if name not in names:
            names.append(name)
    return names


class RateLimiter:
    """Spaces the starts of analyses so that at most `per_minute` begin in any minute."""

    def __init__(self, per_minute: float | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


class SerialKnowledge:
    """The knowledge base with one call at a time, so worker threads can share it.

    The reads every analysis makes (classes, a class's rules and settings) are remembered for the
    run: an evaluation judges every item against the same knowledge, and saves a store query each.
    """

    SNAPSHOT = ("classes", "rules", "class_settings")

    def __init__(self, kb):
        self._kb, self._lock = kb, threading.Lock()
        self._remembered: dict[tuple, object] = {}

    def __getattr__(self, name):
        attribute = getattr(self._kb, name)
        if not callable(attribute):
            return attribute

        def locked(*args, **kwargs):
            key = (name, args, tuple(sorted(kwargs.items())))
            with self._lock:
                if name not in self.SNAPSHOT:
                    return attribute(*args, **kwargs)
                if key not in self._remembered:
                    self._remembered[key] = attribute(*args, **kwargs)
                return copy.copy(self._remembered[key])  # callers may extend the list they get
        return locked


class EvaluationRun:
    """One evaluation: a data set, strategies, a backend and a results directory."""

    def __init__(self, dataset: EvalSet, settings, kb, options: RunOptions, out_dir: Path, *, backend=None):
        from assistant.backends.registry import create_backend

        self.dataset, self.settings, self.options = dataset, settings, options
        self.kb = SerialKnowledge(kb)
        self.backend = backend or create_backend(settings)
        self.backend_name, self.model = self.backend.name, self.backend.model
        self.cache = ResultCache(Path(out_dir) / "results.jsonl")
        self.picker = ReferencePicker(dataset, options.shots, options.ref_choice, default_view(settings.cache_dir))
        self.limiter = RateLimiter(options.requests_per_minute)
        self.knowledge = KnowledgePrints(dataset, self.kb, options.question)
        self._series: dict[str, dict | None] = {}
        self._series_lock = threading.Lock()

    @property
    def reference_setup(self) -> str:
        return "none" if self.dataset.modality == "series" else f"{self.options.ref_choice}-{self.options.shots}"

    def key(self, item: Item, strategy: str) -> str:
        return result_key(item.id, strategy, self.backend_name, self.model, prompts.PROMPT_VERSION, self.reference_setup,
                          self.knowledge.of(item.class_name))

    def jobs(self) -> list[tuple[Item, str]]:
        """Every (item, strategy), in a fixed order: class, item id, strategy as given."""
        ordered = sorted(self.dataset.items, key=lambda i: (i.class_name, i.id))
        return [(item, s) for item in ordered for s in self.options.strategies]

    def run(self) -> RunOutcome:
        """Analyse what is not cached yet; return every result of this setup."""
        jobs = self.jobs()
        todo = [job for job in jobs if self.key(*job) not in self.cache]
        started, usage = time.perf_counter(), {}
        self._run_all(todo, usage)
        keys = {self.key(*job) for job in jobs}
        rows = [r for r in self.cache.records() if r["key"] in keys]
        return RunOutcome(rows, len(todo), len(jobs) - len(todo), time.perf_counter() - started, usage,
                          self.backend_name, self.model)

    def _run_all(self, todo: list[tuple[Item, str]], usage: dict) -> None:
        failure: BaseException | None = None
        queue, pending = iter(todo), set()
        pool = ThreadPoolExecutor(max(1, self.options.concurrency), thread_name_prefix="eval")
        bar = _progress(len(todo), self.options.progress)
        try:
            while True:
                while failure is None and len(pending) < 2 * max(1, self.options.concurrency):
                    job = next(queue, None)
                    if job is None:
                        break
                    pending.add(pool.submit(self.analyse, *job))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        record = future.result()
                    except Exception as exc:  # noqa: BLE001 - kept, raised once the work in flight is saved
                        failure = failure or exc
                        continue
                    self.cache.append(record)
                    add_usage(usage, record.get("usage"))
                    bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        if failure is not None:
            raise failure

    def analyse(self, item: Item, strategy: str) -> dict:
        """One analysis as a result record (InputError from a bad file becomes an 'error' record)."""
        started = time.perf_counter()
        references: list[Path] = []
        try:
            references = self.picker.pick(item)
            self.limiter.wait()
            verdict, report = self._verdict(item, strategy, references)
        except ConfigError:
            raise  # the setup is wrong (key, model, URL), not this item: stop the run
        except InputError as exc:
            return self._record(item, strategy, references, None, time.perf_counter() - started, str(exc))
        record = self._record(item, strategy, references, verdict, time.perf_counter() - started)
        record.update(localised_fields(self.dataset.modality, item, record, verdict, report))
        return record

    def _verdict(self, item: Item, strategy: str, references: list[Path]):
        from assistant.session import Session

        session = Session(self.settings, self.kb, backend=self.backend)
        files = [str(item.path), *(str(p) for p in references)]
        verdict = None
        for event in session.send(self.options.question, files, class_name=item.class_name, strategy=strategy,
                                  references=0):
            if event.kind == "verdict":
                verdict = event.verdict
        if verdict is None:
            raise RuntimeError(f"the session gave no verdict for {item.id}")
        return verdict, getattr(getattr(session.last_turn, "evidence", None), "expert", None)

    def _record(self, item: Item, strategy: str, references, verdict, seconds: float, error: str | None = None) -> dict:
        record = {"key": self.key(item, strategy), "item": item.id, "class": item.class_name,
                  "label": int(item.anomalous), "defect": item.defect, "strategy": strategy,
                  "backend": self.backend_name, "model": self.model, "prompt_version": prompts.PROMPT_VERSION,
                  "references": [self.dataset.relative(p) for p in references], "reference_setup": self.reference_setup,
                  "knowledge": self.knowledge.of(item.class_name),
                  "mask": self.dataset.relative(item.mask) if item.mask else None, "seconds": round(seconds, 3),
                  "status": "error", "error": error, "anomalous": None, "score": None, "score_source": "none",
                  "parse_error": None, "usage": {}, "box": None, "box_hit": None, "series": self._series_of(item)}
        if verdict is not None:
            record.update(_verdict_fields(verdict))
            if record["anomalous"] and item.anomalous and self.dataset.modality != "point_cloud":  # scans: pixels.py
                record["box_hit"] = metrics.box_hits_mask(record["box"], item.mask)
        return record

    def _series_of(self, item: Item) -> dict | None:
        """The series expert's window hits and false alarms for a series item (once per item)."""
        if self.dataset.modality != "series":
            return None
        with self._series_lock:
            if item.id not in self._series:
                from assistant.evaluation.nab import series_windows

                try:
                    self._series[item.id] = series_windows(item)
                except InputError:
                    self._series[item.id] = None
            return self._series[item.id]


def _verdict_fields(verdict) -> dict:
    status = "unparsed" if not verdict.parsed else "undecided" if verdict.anomalous is None else "ok"
    return {"status": status, "anomalous": verdict.anomalous, "score": verdict.score,
            "score_source": verdict.score_source, "parse_error": verdict.parse_error, "usage": dict(verdict.usage or {}),
            "box": (verdict.location or {}).get("box"), "error": None}


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="eval", unit="analysis", file=sys.stderr, disable=not enabled or total == 0,
                smoothing=0.1, dynamic_ncols=True)
