"""Export and import of a whole knowledge base as one zip: a manifest plus the reference files.

    knowledge.json          classes (with settings), rules, references (with descriptors), tombstones
    files/<sha256><suffix>  each reference file once

Import checks everything before it changes anything: the archive must be ours, every entry name
must be one we write (no path tricks), the entry count and the unpacked size are capped (a zip bomb
is refused before anything is unpacked), every file must match its sha256 and every record must
pass the same checks as an expert's input. Records are merged by id. Deletions recorded in an
archive (tombstones) are only listed unless the person asks for them to be applied: an archive must
not silently delete local rules, seed rules with predictable ids included. With deletions applied,
a round trip is lossless.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from knowledge import names
from knowledge.classes import check_setting
from knowledge.files import is_stored_name
from knowledge.models import Rule, now_iso
from tools.errors import InputError
from tools.experts.descriptor import DIMENSIONS

MANIFEST = "knowledge.json"
FORMAT = "anomaly-chat-knowledge"
FORMAT_VERSION = 1
_REF_FIELDS = ("class_name", "modality", "sha256", "size", "note", "author", "created_at")


@dataclass(frozen=True)
class ImportLimits:
    """What an archive may unpack to; beyond it the import is refused before anything is written."""

    max_entries: int = 100_000
    max_unpacked_bytes: int = 20 * 2**30  # 20 GiB of reference files at most
    max_manifest_bytes: int = 256 * 2**20
    max_ratio: int = 1000  # unpacked / packed size of one entry: beyond this it is a zip bomb
    free_space_margin: int = 512 * 2**20  # what must stay free on the store's disk after the import


def export_archive(file: Path, *, meta, rules, shelf) -> dict:
    """Write the knowledge base to a zip at file (atomically); returns counts."""
    references, sources = _reference_entries(shelf)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "exported_at": now_iso(),
                "classes": [{"name": n, **_class_fields(meta.class_record(n))} for n in meta.class_names()],
                "rules": [{**r.to_dict(), "expert_changed": bool(x.get("expert_changed"))} for r, x in rules.all()],
                "references": references, "tombstones": sorted(meta.tombstones())}
    file = Path(file)
    partial = file.with_name(file.name + ".part")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
            for name, source in sources.items():
                archive.write(source, name)
        os.replace(partial, file)
    except OSError as exc:  # a full disk, a folder that is not writable: nothing half-written stays behind
        partial.unlink(missing_ok=True)
        raise InputError(f"cannot write the export to {file} ({exc.strerror or exc}); free some space or "
                         "choose another place") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return {"classes": len(manifest["classes"]), "rules": len(manifest["rules"]), "references": len(references)}


def _class_fields(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "type"}


def _reference_entries(shelf) -> tuple[list[dict], dict[str, Path]]:
    """Manifest entries of every reference, and where each archived file comes from."""
    found = shelf.records(with_descriptors=True)
    entries, sources = [], {}
    for ref_id, meta, descriptor in zip(found["ids"], found["metadatas"], found["embeddings"], strict=True):
        name = f"files/{Path(meta['file']).name}"
        sources[name] = shelf.files.absolute(meta["file"])
        entries.append({"id": ref_id, **{k: meta[k] for k in _REF_FIELDS}, "file": name,
                        "descriptor": [float(v) for v in descriptor]})
    return sorted(entries, key=lambda e: e["id"]), sources


def read_archive(file: Path, limits: ImportLimits | None = None, store_dir: Path | None = None
                 ) -> tuple[zipfile.ZipFile, dict]:
    """Open an archive and return it with its checked manifest; InputError when it is not ours or
    would unpack to more than the limits (or the free space of store_dir) allow."""
    file = Path(file)
    if not file.is_file():
        raise InputError(f"{file} does not exist; give a file written by `anomaly-chat kb export`")
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError):
        raise InputError(f"{file} is not a zip archive; give a file written by `anomaly-chat kb export`") from None
    try:
        _check_sizes(archive, file, limits or ImportLimits(), store_dir)
        manifest = _read_manifest(archive, file)
        _check_entry_names(archive, file)
        check_manifest(manifest, archive, file)
    except BaseException:
        archive.close()
        raise
    return archive, manifest


def _check_sizes(archive: zipfile.ZipFile, file: Path, limits: ImportLimits, store_dir: Path | None) -> None:
    """Refuse archives with too many entries or too much to unpack, judged from the central directory
    (zipfile never unpacks more than an entry's declared size, so the declared sizes bound the work)."""
    entries = archive.infolist()
    if len(entries) > limits.max_entries:
        raise InputError(f"refusing {file}: it has {len(entries):,} entries, more than the {limits.max_entries:,} "
                         "an export of ours can hold")
    for info in entries:
        if info.file_size > 2**20 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise InputError(f"refusing {file}: entry {info.filename!r} would unpack {info.file_size // info.compress_size or 1:,} "
                             "times larger than it is stored (a zip bomb); export the knowledge base again")
    manifest = next((i for i in entries if i.filename == MANIFEST), None)
    if manifest is not None and manifest.file_size > limits.max_manifest_bytes:
        raise InputError(f"refusing {file}: its {MANIFEST} is {_mib(manifest.file_size)}, more than the "
                         f"{_mib(limits.max_manifest_bytes)} an export of ours can hold")
    total = sum(i.file_size for i in entries)
    if total > limits.max_unpacked_bytes:
        raise InputError(f"refusing {file}: it would unpack to {_mib(total)}, more than the "
                         f"{_mib(limits.max_unpacked_bytes)} allowed")
    if store_dir is not None:
        free = shutil.disk_usage(_existing_parent(store_dir)).free
        if total + limits.free_space_margin > free:
            raise InputError(f"refusing {file}: it would unpack to {_mib(total)} but only {_mib(free)} are free "
                             "where the knowledge base lives; free some space first")


def _existing_parent(path: Path) -> Path:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _check_entry_names(archive: zipfile.ZipFile, file: Path) -> None:
    for info in archive.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in name.split("/") or "\\" in name or ":" in name:
            raise InputError(f"refusing {file}: entry {name!r} would be written outside the store (unsafe path)")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InputError(f"refusing {file}: entry {name!r} is a symbolic link; exports hold plain files only")
        folder, _, base = name.partition("/")
        if name != MANIFEST and not (folder == "files" and is_stored_name(base)):
            raise InputError(f"refusing {file}: entry {name!r} is not part of an anomaly-chat knowledge export")


def _read_manifest(archive: zipfile.ZipFile, file: Path) -> dict:
    not_ours = f"{file} is not an anomaly-chat knowledge export; make one with `anomaly-chat kb export FILE`"
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except (KeyError, ValueError, UnicodeDecodeError, zipfile.BadZipFile):
        raise InputError(not_ours) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(not_ours)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{file} has export format version {manifest.get('format_version')}; "
                         f"this version reads {FORMAT_VERSION}; upgrade anomaly-chat")
    return manifest


def check_manifest(manifest: dict, archive: zipfile.ZipFile, file: Path) -> None:
    """Every record must be one this store would have accepted from an expert."""
    try:
        for entry in manifest["classes"]:
            _check_class(entry)
        for entry in manifest["rules"]:
            rule_from_entry(entry)
        present = set(archive.namelist())
        for entry in manifest["references"]:
            _check_reference(entry, present)
        if not all(isinstance(t, str) for t in manifest["tombstones"]):
            raise InputError("a tombstone is not an id")
    except (KeyError, TypeError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"refusing {file}: a record is damaged ({detail}); export it again") from None


def _check_class(entry: dict) -> None:
    names.canonical_class(entry["name"])
    names.short_text(entry["display"], "class display name")
    for layer in ("seed_settings", "expert_settings"):
        for key, value in json.loads(entry[layer]).items():
            check_setting(key, value)


def rule_from_entry(entry: dict) -> Rule:
    """A Rule from an archive entry, checked like a new rule."""
    return Rule(id=names.short_text(entry["id"], "rule id"), class_name=names.canonical_class(entry["class_name"]),
                modality=names.modality(entry["modality"]), text=names.rule_text(entry["text"]),
                kind=names.kind(entry["kind"]), author=names.short_text(entry["author"], "author"),
                created_at=str(entry["created_at"]), source=names.short_text(entry["source"], "source"),
                active=bool(entry["active"]))


def _check_reference(entry: dict, present: set[str]) -> None:
    names.canonical_class(entry["class_name"])
    names.modality(entry["modality"])
    if entry["file"] not in present or not Path(entry["file"]).name.startswith(entry["sha256"]):
        raise InputError(f"reference {entry['id']} has no file {entry['file']} in the archive")
    descriptor = entry["descriptor"]
    if len(descriptor) != DIMENSIONS or not all(math.isfinite(v) for v in descriptor):
        raise InputError(f"reference {entry['id']} has a damaged descriptor")


def planned_deletions(manifest: dict, *, meta, rules) -> list[dict]:
    """What the archive's tombstones would delete here: local rules by id and local classes."""
    planned = []
    for tombstone in manifest["tombstones"]:
        if tombstone.startswith("class:"):
            name = tombstone.removeprefix("class:")
            if meta.class_record(name) is not None:
                planned.append({"id": tombstone, "what": "class", "class_name": name, "text": ""})
        elif rules.exists(tombstone):
            rule = rules.get(tombstone)
            planned.append({"id": tombstone, "what": "rule", "class_name": rule.class_name, "text": rule.text})
    return planned


def merge_archive(archive: zipfile.ZipFile, manifest: dict, *, meta, rules, shelf,
                  apply_deletions: bool = False) -> dict:
    """Add an archive's files and records to the store (the caller holds the write lock); returns counts
    and the deletions the archive asks for (applied only with apply_deletions)."""
    deletions = planned_deletions(manifest, meta=meta, rules=rules)
    staged = _stage_files(archive, manifest["references"], shelf.files)
    for tmp_path, relative in staged:
        shelf.files.adopt(tmp_path, relative)
    _merge_classes(meta, manifest)
    rules.put([rule_from_entry(e) for e in manifest["rules"]], [bool(e.get("expert_changed")) for e in manifest["rules"]])
    refs = manifest["references"]
    shelf.put([e["id"] for e in refs],
              [{**{k: e[k] for k in _REF_FIELDS}, "class_name": names.canonical_class(e["class_name"]),
                "file": shelf.files.relative(e["sha256"], Path(e["file"]).suffix)} for e in refs],
              [e["descriptor"] for e in refs])
    if apply_deletions:
        _apply_tombstones(manifest["tombstones"], meta, rules, shelf)
    return {"classes": len(manifest["classes"]), "rules": len(manifest["rules"]), "references": len(refs),
            "deletions": deletions, "deletions_applied": bool(apply_deletions and deletions)}


def _apply_tombstones(tombstones: list[str], meta, rules, shelf) -> None:
    """What the exporting store's expert deleted is deleted here too (a class only once it is empty)."""
    meta.add_tombstones(tombstones)
    rules.delete([t for t in tombstones if rules.exists(t)])
    for name in (t.removeprefix("class:") for t in tombstones if t.startswith("class:")):
        if not rules.ids_of_class(name) and not shelf.for_class(name):
            meta.remove_class(name)


def _stage_files(archive: zipfile.ZipFile, refs: list[dict], files) -> list[tuple[Path, str]]:
    """Extract files the store lacks under tmp/, checking each sha256; nothing is kept if one is wrong."""
    staged: list[tuple[Path, str]] = []
    try:
        for entry in {e["file"]: e for e in refs}.values():
            relative = files.relative(entry["sha256"], Path(entry["file"]).suffix)
            if files.absolute(relative).is_file():
                continue
            staged.append((_extract_checked(archive, entry, files), relative))
    except BaseException:
        for tmp_path, _ in staged:
            tmp_path.unlink(missing_ok=True)
        raise
    return staged


def _extract_checked(archive: zipfile.ZipFile, entry: dict, files) -> Path:
    digest = hashlib.sha256()
    with archive.open(entry["file"]) as src, files.temp_file() as (tmp_path, dst):
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
    if digest.hexdigest() != entry["sha256"]:
        tmp_path.unlink(missing_ok=True)
        raise InputError(f"file {entry['file']} in the archive does not match its checksum; export it again")
    return tmp_path


def _merge_classes(meta, manifest: dict) -> None:
    for entry in manifest["classes"]:
        name = names.canonical_class(entry["name"])
        local = meta.class_record(name)
        fields = {k: v for k, v in entry.items() if k != "name"}
        if local is None:
            meta.put_class(name, fields)
            continue
        # This installation's seed defaults stay; the archive's expert settings win over local ones.
        expert = {**json.loads(local.get("expert_settings", "{}")), **json.loads(fields.get("expert_settings", "{}"))}
        meta.put_class(name, {**local, "expert_settings": json.dumps(expert, sort_keys=True)})
    used = {names.canonical_class(e["class_name"]): e["class_name"] for e in manifest["rules"] + manifest["references"]}
    for name, display in used.items():
        meta.ensure_class(name, display)
