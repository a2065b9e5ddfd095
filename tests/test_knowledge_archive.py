"""Export and import of a whole knowledge base: lossless round trip, refusal of foreign or unsafe archives."""

from __future__ import annotations

import json
import zipfile

import pytest

from knowledge.archive import MANIFEST
from knowledge.store import KnowledgeBase
from tests.fixtures_knowledge import make_image
from tools.errors import InputError


def _content(kb) -> dict:
    """Everything a person can see in a knowledge base, independent of where it is stored."""
    classes = kb.classes()
    return {
        "classes": {c: (kb.display_name(c), kb.class_settings(c)) for c in classes},
        "rules": sorted((r.to_dict() for c in classes for r in kb.rules(c, include_inactive=True)),
                        key=lambda r: r["id"]),
        "references": sorted(({**s.to_dict(), "path": None, "bytes": s.path.read_bytes()}
                              for c in classes for s in kb.references(c)), key=lambda r: r["id"]),
    }


@pytest.fixture
def taught_kb(kb, image_file, tmp_path):
    """A knowledge base an expert has worked with: new rules, edits, deletions, references, settings."""
    kb.add_rule("Gear Wheel", "All teeth are present and equally spaced.", author="ana")
    kb.add_rule("gear wheel", "A tooth is chipped.", kind="defect", author="bo")
    kb.edit_rule("seed.bottle.normality", text="Our bottles have a blue rim.", author="ana")
    kb.deactivate_rule("seed.cable.defects")
    kb.delete_rule("seed.grid.defects")
    kb.delete_class("wood")
    kb.set_class_setting("gear wheel", "rotation_invariant", True)
    kb.add_reference("gear wheel", image_file(1), note="line 2")
    cloud = tmp_path / "bagel.xyz"
    cloud.write_text("0 0 0\n1 1 1\n")
    kb.add_reference("bagel", cloud, modality="point_cloud", view_image=make_image(9))
    return kb


def test_round_trip_is_lossless(taught_kb, tmp_path):
    archive = tmp_path / "kb.zip"
    counts = taught_kb.export(archive)
    assert counts["references"] == 2 and counts["rules"] > 90
    fresh = KnowledgeBase.open(tmp_path / "other")
    fresh.import_archive(archive, apply_deletions=True)
    assert _content(fresh) == _content(taught_kb)
    query = make_image(9)
    assert [s.id for s in fresh.nearest_references("bagel", query, 1)] == [
        s.id for s in taught_kb.nearest_references("bagel", query, 1)]


def test_import_keeps_expert_changes_against_the_seed(taught_kb, tmp_path):
    archive = tmp_path / "kb.zip"
    taught_kb.export(archive)
    fresh = KnowledgeBase.open(tmp_path / "other")
    fresh.import_archive(archive, apply_deletions=True)
    assert "seed.grid.defects" not in [r.id for r in fresh.rules("grid", include_inactive=True)]
    flags = {rule.id: extra["expert_changed"] for rule, extra in fresh._rules.all()}
    assert flags["seed.bottle.normality"] is True and flags["seed.bottle.defects"] is False


def test_importing_twice_changes_nothing(taught_kb, tmp_path):
    archive = tmp_path / "kb.zip"
    taught_kb.export(archive)
    before = _content(taught_kb)
    taught_kb.import_archive(archive, apply_deletions=True)
    assert _content(taught_kb) == before


def _zip(path, entries: dict) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def _manifest(**changes) -> str:
    return json.dumps({"format": "anomaly-chat-knowledge", "format_version": 1, "classes": [], "rules": [],
                       "references": [], "tombstones": [], **changes})


@pytest.mark.parametrize("entry", ["../evil.txt", "/etc/evil", "files/../../evil", "files\\..\\evil"])
def test_zip_slip_entries_are_refused(kb, tmp_path, entry):
    archive = tmp_path / "evil.zip"
    _zip(archive, {MANIFEST: _manifest(), entry: b"x"})
    with pytest.raises(InputError, match="refusing"):
        kb.import_archive(archive)
    assert not (tmp_path / "evil.txt").exists()


def test_archive_with_foreign_entries_is_refused(kb, tmp_path):
    archive = tmp_path / "other.zip"
    _zip(archive, {MANIFEST: _manifest(), "notes/readme.txt": b"hello"})
    with pytest.raises(InputError, match="not part of an anomaly-chat knowledge export"):
        kb.import_archive(archive)


@pytest.mark.parametrize("content", [{"other.json": "{}"}, {MANIFEST: "{\"format\": \"something else\"}"},
                                     {MANIFEST: "not json"}])
def test_archive_that_is_not_ours_is_refused(kb, tmp_path, content):
    archive = tmp_path / "other.zip"
    _zip(archive, content)
    with pytest.raises(InputError, match="not an anomaly-chat knowledge export"):
        kb.import_archive(archive)


def test_file_that_is_not_a_zip_is_refused(kb, tmp_path):
    not_zip = tmp_path / "kb.zip"
    not_zip.write_text("hello")
    with pytest.raises(InputError, match="not a zip"):
        kb.import_archive(not_zip)
    with pytest.raises(InputError, match="does not exist"):
        kb.import_archive(tmp_path / "missing.zip")


def test_tampered_file_is_refused_and_nothing_changes(taught_kb, tmp_path):
    archive, tampered = tmp_path / "kb.zip", tmp_path / "tampered.zip"
    taught_kb.export(archive)
    fresh = KnowledgeBase.open(tmp_path / "other")
    before = _content(fresh)
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data + b"!" if item.filename.startswith("files/") else data)
    with pytest.raises(InputError, match="checksum"):
        fresh.import_archive(tampered)
    assert _content(fresh) == before
    assert not any((fresh.path / "tmp").glob("*")) and not (fresh.path / "files").exists()


def test_archive_with_an_invalid_rule_is_refused_and_nothing_changes(kb, tmp_path):
    archive = tmp_path / "bad.zip"
    rule = {"id": "rule-1", "class_name": "widget", "modality": "image", "text": "x" * 5000, "kind": "normality",
            "author": "a", "created_at": "2026-01-01", "source": "expert", "active": True}
    _zip(archive, {MANIFEST: _manifest(rules=[rule])})
    with pytest.raises(InputError, match="damaged"):
        kb.import_archive(archive)
    assert "widget" not in kb.classes()


def test_export_holds_no_local_paths(taught_kb, tmp_path):
    archive = tmp_path / "kb.zip"
    taught_kb.export(archive)
    with zipfile.ZipFile(archive) as opened:
        manifest_text = opened.read(MANIFEST).decode()
        names = opened.namelist()
    assert str(taught_kb.path) not in manifest_text and str(tmp_path) not in manifest_text
    assert sorted(names) == sorted([MANIFEST] + [f"files/{s.path.name}" for c in taught_kb.classes()
                                                 for s in taught_kb.references(c)])
