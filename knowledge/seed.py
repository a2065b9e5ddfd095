"""Seed knowledge: the project's own rule texts for known benchmark classes, loaded on first open.

Seed rules have stable ids (seed.<class>.<topic>). Loading is idempotent and respects the expert:
a seed rule the expert edited or deactivated is marked `expert_changed` and left alone by later
seeds; one the expert deleted leaves a tombstone so that a later seed does not bring it back. A
hash of the seed files is stored, so an unchanged seed costs one lookup on open.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources

from knowledge import names
from knowledge.classes import MetaRecords, check_setting
from knowledge.models import Rule, now_iso
from knowledge.rules import RuleBook

SEED_AUTHOR = "anomaly-chat seed"


@dataclass(frozen=True)
class SeedClass:
    name: str
    display: str
    settings: dict
    rules: tuple[Rule, ...]


def seed_files() -> dict[str, str]:
    """File name -> text of every seed file shipped in knowledge/seed/."""
    folder = resources.files("knowledge") / "seed"
    return {f.name: f.read_text(encoding="utf-8") for f in sorted(folder.iterdir(), key=lambda f: f.name)
            if f.name.endswith(".json")}


def seed_hash(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name, text in sorted(files.items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def parse_seed(files: dict[str, str], created_at: str) -> list[SeedClass]:
    """The classes and rules of the seed files, checked like an expert's input would be."""
    found, seen_ids = [], set()
    for text in files.values():
        for key, body in json.loads(text)["classes"].items():
            name = names.canonical_class(key)
            modality = names.modality(body["modality"])
            for setting, value in body.get("settings", {}).items():
                check_setting(setting, value)
            rules = tuple(Rule(id=r["id"], class_name=name, modality=modality, text=names.rule_text(r["text"]),
                               kind=names.kind(r["kind"]), author=SEED_AUTHOR, created_at=created_at,
                               source="seed", active=True) for r in body["rules"])
            duplicates = seen_ids.intersection(r.id for r in rules)
            if duplicates:
                raise ValueError(f"seed rule ids used twice: {sorted(duplicates)}")
            seen_ids.update(r.id for r in rules)
            found.append(SeedClass(name, names.display_name(body.get("display", key)), body.get("settings", {}), rules))
    return found


def seed_texts() -> list[str]:
    """The texts of every shipped seed rule (to embed them ahead of the write lock)."""
    return [r.text for c in parse_seed(seed_files(), "") for r in c.rules]


def needs_seeding(meta: MetaRecords) -> bool:
    """True when the stored seed state differs from the shipped seed files."""
    return meta.value("seed_hash") != seed_hash(seed_files())


def apply_seed(meta: MetaRecords, rules: RuleBook) -> int:
    """Bring the store up to the shipped seed, leaving the expert's changes alone; returns rules written.

    The caller holds the write lock.
    """
    files = seed_files()
    digest = seed_hash(files)
    if meta.value("seed_hash") == digest:
        return 0  # another process seeded while this one waited for the lock
    tombstones = meta.tombstones()
    stored = {rule.id: (rule, extra) for rule, extra in rules.all() if rule.source == "seed"}
    classes = [c for c in parse_seed(files, now_iso()) if f"class:{c.name}" not in tombstones]
    _seed_class_records(meta, classes)
    wanted = [r for c in classes for r in c.rules if r.id not in tombstones]
    changed = [_keep_created(rule, stored[rule.id][0]) if rule.id in stored else rule
               for rule in wanted if _seed_may_write(rule, stored.get(rule.id))]
    rules.put(changed)
    wanted_ids = {r.id for r in wanted}
    retired = [i for i, (_, extra) in stored.items() if i not in wanted_ids and not extra.get("expert_changed")]
    rules.delete(retired)
    meta.set_value("seed_hash", digest)
    return len(changed)


def _seed_may_write(rule: Rule, stored: tuple[Rule, dict] | None) -> bool:
    if stored is None:
        return True
    old, extra = stored
    if extra.get("expert_changed"):
        return False  # the expert's version wins over any later seed
    return (old.text, old.kind, old.modality, old.class_name) != (rule.text, rule.kind, rule.modality, rule.class_name)


def _keep_created(rule: Rule, old: Rule) -> Rule:
    return Rule(**{**rule.to_dict(), "created_at": old.created_at})


def _seed_class_records(meta: MetaRecords, classes: list[SeedClass]) -> None:
    """Create missing class records and refresh the seed's settings layer (the expert's layer is kept)."""
    stored = meta.class_records([c.name for c in classes])
    changed = {}
    for seed_class in classes:
        settings = json.dumps(seed_class.settings, sort_keys=True)
        record = stored.get(seed_class.name)
        if record is None:
            changed[seed_class.name] = {"display": seed_class.display, "seed_settings": settings,
                                        "expert_settings": "{}", "created_at": now_iso()}
        elif record.get("seed_settings") != settings:
            changed[seed_class.name] = {**record, "seed_settings": settings}
    meta.put_classes(changed)
