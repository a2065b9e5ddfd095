"""The knowledge fingerprint of a class: what, besides the item and the prompt version, decides its prompt.

It covers the rules an analysis of the class puts in the prompt (its own, or the closest rules of
other classes when it has none: assistant.pipeline.rules_for), the class's expert settings, and the
content of every file its references may be drawn from (the reference pool of the data set). The
cache key of a result holds it, so a result is not reused after any of them changes; run.json and
each result record it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from assistant.evaluation.datasets import EvalSet

DIGITS = 16


class KnowledgePrints:
    """The fingerprint of each class of a data set, computed once per run (file hashes memoised)."""

    def __init__(self, dataset: EvalSet, kb, question: str = ""):
        self.dataset, self.kb, self.question = dataset, kb, question
        self._prints: dict[str, str] = {}
        self._lock = threading.Lock()

    def of(self, class_name: str) -> str:
        """The fingerprint of one class."""
        with self._lock:
            if class_name not in self._prints:
                self._prints[class_name] = class_fingerprint(self.kb, self.dataset, class_name, self.question)
            return self._prints[class_name]

    def all(self) -> dict[str, str]:
        """{class: fingerprint} for every class of the data set."""
        return {name: self.of(name) for name in self.dataset.classes}

    def combined(self) -> str:
        """One fingerprint over every class's (for run.json and the report heading)."""
        return _digest(json.dumps(self.all(), sort_keys=True).encode())


def class_fingerprint(kb, dataset: EvalSet, class_name: str, question: str = "") -> str:
    """A digest of the class's prompt rules, its expert settings and its reference pool's file contents."""
    from assistant.pipeline import rules_for

    rules = [[r.id, getattr(r, "class_name", None), r.kind, r.text] for r in rules_for(kb, class_name, question)]
    pool = [[dataset.relative(path), file_digest(path)] for path in dataset.class_pool(class_name)]
    knowledge = {"rules": rules, "settings": kb.class_settings(class_name), "references": pool}
    return _digest(json.dumps(knowledge, sort_keys=True, default=str).encode())


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's content ('missing' when it cannot be read)."""
    from knowledge.files import sha256_of

    try:
        return sha256_of(path)
    except OSError:
        return "missing"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGITS]
