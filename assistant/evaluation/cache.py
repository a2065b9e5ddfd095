"""results.jsonl: one JSON line per finished (item, strategy, backend, model, prompt version, reference setup,
knowledge fingerprint).

Append-only; each line is flushed and fsynced as soon as its item is done, so a killed run loses at
most the item in flight. On reopening, lines that do not parse (a torn last line from a kill) are
ignored, and a missing final newline is supplied first so the next record starts on its own line.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


def result_key(item_id: str, strategy: str, backend: str, model: str, prompt_version: str, references: str,
               knowledge: str) -> str:
    """The cache key of one result; `references` names the reference setup (e.g. 'nearest-1'), `knowledge`
    is the class's knowledge fingerprint (assistant/evaluation/fingerprint.py)."""
    return "|".join((item_id, strategy, backend, model, prompt_version, references, knowledge))


class ResultCache:
    """The finished results of a run directory, and the file new ones are appended to."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.results: dict[str, dict] = {}
        self.ignored_lines = 0
        self._lock = threading.Lock()
        self._read()
        self._torn_tail = self.path.is_file() and self.path.stat().st_size > 0 and not _ends_with_newline(self.path)

    def _read(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb") as handle:
            for raw in handle:
                record = _parse(raw)
                if record is None:
                    self.ignored_lines += bool(raw.strip())
                    continue
                self.results.setdefault(record["key"], record)

    def __contains__(self, key: str) -> bool:
        return key in self.results

    def __len__(self) -> int:
        return len(self.results)

    def append(self, record: dict) -> None:
        """Write one result durably (flush + fsync) and remember it; thread-safe."""
        line = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str) + "\n"
        with self._lock:
            if record["key"] in self.results:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as handle:
                if self._torn_tail:
                    handle.write(b"\n")  # close the torn line a killed run left, so it stays one ignored line
                    self._torn_tail = False
                handle.write(line.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            self.results[record["key"]] = record

    def records(self) -> list[dict]:
        """All results, sorted by key (deterministic whatever order the workers finished in)."""
        return [self.results[k] for k in sorted(self.results)]


def _parse(raw: bytes) -> dict | None:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("key"), str) else None


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
