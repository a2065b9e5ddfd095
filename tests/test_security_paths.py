"""Paths: an upload's name is only ever shown, and exports and imports write nowhere but their target.

The launched app's own upload handling (names sent by a browser) is in tests/test_security_ui.py.
"""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from pathlib import Path

import pytest

from knowledge.archive import MANIFEST
from knowledge.store import KnowledgeBase
from tests.helpers import data
from tools.errors import InputError
from tools.inputs.artifacts import display_name, load

HOSTILE_NAMES = ["../../etc/passwd", "/etc/shadow", "C:\\Windows\\win.ini", "part\x00.png", "x" * 5000 + ".png",
                 "invoice\u202egnp.exe", "zero\u200bwidth\u2066.png", "line\nbreak.png", "..", ""]
INVISIBLE = ("\x00", "\u202e", "\u200b", "\u2066", "\n")


def _tree(root: Path) -> set[str]:
    """Every path under root (files, folders, links), relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    return data.write_image(data.part_image((48, 48)), tmp_path_factory.mktemp("pictures") / "part.png")


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_upload_name_is_kept_as_a_label_and_the_file_is_read_from_its_own_path(picture, name):
    artifact = load(picture, name=name)
    assert artifact.path == picture and artifact.kind == "image"


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_upload_name_is_shown_without_invisible_characters_and_bounded(name):
    shown = display_name(name)
    assert shown and len(shown) <= 120 and not any(c in shown for c in INVISIBLE)


def test_a_refusal_names_the_upload_by_its_cleaned_name(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError) as caught:
        load(empty, name="report\u202egnp.exe")
    assert str(caught.value).startswith("reportgnp.exe: the file is empty")


@pytest.fixture(scope="module")
def kb(tmp_path_factory) -> KnowledgeBase:
    store = KnowledgeBase.open(tmp_path_factory.mktemp("kb"))
    yield store
    store.close()


def test_a_reference_with_a_hostile_file_name_is_stored_under_its_content_hash(kb, picture, tmp_path):
    odd = tmp_path / "..; rm -rf ~ \u202e.PnG.sh"
    odd.write_bytes(picture.read_bytes())
    sample = kb.add_reference("widget", odd)
    digest = hashlib.sha256(picture.read_bytes()).hexdigest()
    assert sample.path.parent.parent == kb.path / "files" and sample.path.name == f"{digest}.sh"


# -- knowledge-base archives -----------------------------------------------------------------------
def _manifest(**changes) -> str:
    return json.dumps({"format": "anomaly-chat-knowledge", "format_version": 1, "classes": [], "rules": [],
                       "references": [], "tombstones": [], **changes})


def _reference_entry(file: str, sha256: str) -> dict:
    return {"id": "ref-x", "class_name": "widget", "modality": "image", "sha256": sha256, "size": 1, "note": "",
            "author": "a", "created_at": "2026-01-01", "file": file, "descriptor": [0.1] * 512}


def _symlink_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix, so that the mode bits count
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _refused_and_nothing_written(kb: KnowledgeBase, archive: Path, words: str) -> None:
    """Import the archive: it must be refused, and neither the store nor the archive's folder may change."""
    before = (_tree(kb.path), _tree(archive.parent), [r.id for r in kb.rules("widget", include_inactive=True)])
    with pytest.raises(InputError, match=words):
        kb.import_archive(archive)
    after = (_tree(kb.path), _tree(archive.parent), [r.id for r in kb.rules("widget", include_inactive=True)])
    assert after == before


def test_archive_with_a_symlink_entry_is_refused(kb, tmp_path):
    target = "/etc/passwd"
    name = f"files/{hashlib.sha256(target.encode()).hexdigest()}.png"
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr(MANIFEST, _manifest(references=[_reference_entry(name, hashlib.sha256(target.encode()).hexdigest())]))
        out.writestr(_symlink_entry(name), target)  # a symlink's content is its target
    _refused_and_nothing_written(kb, archive, "symbolic link")


@pytest.mark.parametrize("entry", ["C:/Windows/evil.png", "files/\x00evil.png", "files/\u2025/evil.png",
                                   "//server/share/evil.png", "files/" + "a" * 64 + ".png/../../evil"])
def test_archive_entry_with_a_drive_nul_lookalike_or_unc_path_is_refused(kb, tmp_path, entry):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr(MANIFEST, _manifest())
        out.writestr(entry, b"x")
    _refused_and_nothing_written(kb, archive, "refusing")


@pytest.mark.parametrize("file, sha256", [("/etc/passwd", "0" * 64), ("files/../../evil.png", ""),
                                          ("files/" + "a" * 64 + ".png", "../../../evil"),
                                          ("files/" + "a" * 64 + ".png", "")])
def test_manifest_paths_cannot_steer_where_files_go(kb, tmp_path, file, sha256):
    archive = tmp_path / "steer.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr(MANIFEST, _manifest(references=[_reference_entry(file, sha256)]))
        out.writestr("files/" + "a" * 64 + ".png", b"not what the checksum says")
    _refused_and_nothing_written(kb, archive, "refusing|checksum|no file")


def test_export_writes_only_its_target_file(kb, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    kb.export(folder / "kb.zip")
    assert _tree(folder) == {"kb.zip"}
    with zipfile.ZipFile(folder / "kb.zip") as archive:
        assert all(n == MANIFEST or n.startswith("files/") for n in archive.namelist())


def test_export_into_a_missing_folder_is_one_clear_line_and_writes_nothing(kb, tmp_path):
    with pytest.raises(InputError, match="cannot write the export to .*; free some space or choose another place"):
        kb.export(tmp_path / "no-such-folder" / "kb.zip")
    assert not (tmp_path / "no-such-folder").exists()


def test_import_writes_only_inside_the_knowledge_base(kb, picture, tmp_path):
    kb.add_reference("gadget", picture)
    archive = tmp_path / "kb.zip"
    kb.export(archive)
    other = KnowledgeBase.open(tmp_path / "other-kb")
    before = _tree(tmp_path)
    other.import_archive(archive)
    assert {p for p in _tree(tmp_path) - before if not p.startswith("other-kb/")} == set()
    assert [s.sha256 for s in other.references("gadget")] == [s.sha256 for s in kb.references("gadget")]
    other.close()
