"""Events one turn emits, in order, for the UI and the CLI to show as they happen."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["step", "text", "verdict", "notice", "answer", "error"]
_ids = itertools.count(1)


@dataclass
class Event:
    """A step (started or finished), streamed text, a notice, the verdict, a final answer or an error."""

    kind: Kind
    title: str = ""
    text: str = ""
    status: Literal["pending", "done", "error"] = "done"
    step_id: str = ""
    duration_s: float = 0.0
    images: list = field(default_factory=list)  # PIL images worth showing (render, composite)
    verdict: Any = None  # assistant.verdict.Verdict for kind == "verdict"


def new_step_id() -> str:
    return f"step-{next(_ids)}"
