"""The records the knowledge base keeps: rules and reference samples."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path


def now_iso() -> str:
    """The current time, UTC, ISO 8601 with microseconds (sortable as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_rule_id() -> str:
    """A fresh rule id; random so that writers in different processes never collide."""
    return f"rule-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Rule:
    """A statement about a class: what normal looks like, a known defect, or a logical constraint."""

    id: str
    class_name: str
    modality: str
    text: str
    kind: str
    author: str
    created_at: str
    source: str  # seed | expert | chat | import
    active: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def metadata(self) -> dict:
        """Everything but id and text, as Chroma metadata."""
        data = asdict(self)
        del data["id"], data["text"]
        return data

    @classmethod
    def from_record(cls, rule_id: str, text: str, meta: dict) -> Rule:
        return cls(id=rule_id, text=text, class_name=meta["class_name"], modality=meta["modality"],
                   kind=meta["kind"], author=meta["author"], created_at=meta["created_at"],
                   source=meta["source"], active=bool(meta["active"]))


@dataclass(frozen=True)
class ReferenceSample:
    """A normal sample of a class, stored content-addressed under the knowledge base directory."""

    id: str
    class_name: str
    modality: str
    path: Path
    sha256: str
    note: str
    author: str
    created_at: str

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def reference_id(class_name: str, sha256: str) -> str:
    """A reference's id follows from its class and content, so adding the same file twice is a no-op."""
    return f"ref-{class_name}-{sha256[:12]}"
