"""Known classes, their display names and settings, kept in the meta collection with other small records.

Settings come in two layers: the seed's defaults and what an expert set. Only the expert's layer
is ever written by hand, so a new seed can change a default without undoing an expert's choice.
"""

from __future__ import annotations

import json
import re

from knowledge.models import now_iso
from tools.errors import InputError

DEFAULT_SETTINGS = {"rotation_invariant": False, "matching": "auto"}
MATCHING = ("auto", "position", "free")
_SETTING_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_DUMMY = [1.0]  # meta records are never searched by similarity; Chroma still wants a vector


def check_setting(key: str, value) -> None:
    """Refuse a class setting with a bad key or value, saying what is allowed."""
    if not isinstance(key, str) or not _SETTING_KEY.match(key):
        raise InputError(f"setting name {key!r} is not usable; use lower-case letters, digits and underscores")
    if key == "rotation_invariant" and not isinstance(value, bool):
        raise InputError("setting rotation_invariant must be true or false")
    if key == "matching" and value not in MATCHING:
        raise InputError(f"setting matching must be one of: {', '.join(MATCHING)}")
    if not isinstance(value, bool | int | float | str) or (isinstance(value, str) and len(value) > 200):
        raise InputError(f"setting {key} must be a number, true/false or a short text")


class MetaRecords:
    """Classes, seed state and tombstones in Chroma, so that every app instance of a server sees them."""

    def __init__(self, collection_of):
        self._collection_of = collection_of  # a function: the collection object changes when Chroma reloads

    @property
    def collection(self):
        return self._collection_of()

    # -- classes --------------------------------------------------------------------------------
    def class_names(self) -> list[str]:
        found = self.collection.get(where={"type": "class"}, include=[])
        return sorted(i.removeprefix("class:") for i in found["ids"])

    def class_record(self, name: str) -> dict | None:
        found = self.collection.get(ids=[f"class:{name}"], include=["metadatas"])
        return found["metadatas"][0] if found["ids"] else None

    def class_records(self, names: list[str]) -> dict[str, dict]:
        """Stored records of these classes (missing ones left out), in one request."""
        found = self.collection.get(ids=[f"class:{n}" for n in names], include=["metadatas"])
        return {i.removeprefix("class:"): m for i, m in zip(found["ids"], found["metadatas"], strict=True)}

    def ensure_class(self, name: str, display: str) -> None:
        """Create the class record if it is missing (the first display name given is kept)."""
        if self.class_record(name) is None:
            self.put_class(name, {"display": display, "seed_settings": "{}", "expert_settings": "{}",
                                  "created_at": now_iso()})

    def put_class(self, name: str, record: dict) -> None:
        self.put_classes({name: record})

    def put_classes(self, records: dict[str, dict]) -> None:
        if records:
            self.collection.upsert(ids=[f"class:{n}" for n in records], embeddings=[_DUMMY] * len(records),
                                   metadatas=[{**r, "type": "class"} for r in records.values()])

    def remove_class(self, name: str) -> None:
        self.collection.delete(ids=[f"class:{name}"])

    def settings(self, name: str) -> dict:
        record = self.class_record(name) or {}
        return {**DEFAULT_SETTINGS, **json.loads(record.get("seed_settings", "{}")),
                **json.loads(record.get("expert_settings", "{}"))}

    def set_expert_setting(self, name: str, key: str, value) -> None:
        record = dict(self.class_record(name))
        expert = json.loads(record.get("expert_settings", "{}"))
        expert[key] = value
        record["expert_settings"] = json.dumps(expert, sort_keys=True)
        self.put_class(name, record)

    # -- seed state and tombstones ----------------------------------------------------------------
    def value(self, key: str) -> str | None:
        found = self.collection.get(ids=[f"state:{key}"], include=["metadatas"])
        return found["metadatas"][0]["value"] if found["ids"] else None

    def set_value(self, key: str, value: str) -> None:
        self.collection.upsert(ids=[f"state:{key}"], embeddings=[_DUMMY],
                               metadatas=[{"type": "state", "value": value}])

    def tombstones(self) -> set[str]:
        """Ids of seed rules and classes an expert deleted: a new seed must not bring them back."""
        found = self.collection.get(where={"type": "tombstone"}, include=[])
        return {i.removeprefix("tombstone:") for i in found["ids"]}

    def add_tombstones(self, ids: list[str]) -> None:
        if ids:
            self.collection.upsert(ids=[f"tombstone:{i}" for i in ids], embeddings=[_DUMMY] * len(ids),
                                   metadatas=[{"type": "tombstone", "at": now_iso()} for _ in ids])
