"""`kb import` of a hostile archive: deletions only on request and listed first; zip bombs refused."""

from __future__ import annotations

import json
import zipfile

import pytest

from assistant.cli import main
from knowledge.archive import MANIFEST, ImportLimits, read_archive
from tools.errors import InputError

SEED_RULE = "seed.bottle.normality"  # a predictable id every installation has


def _manifest(**changes) -> str:
    return json.dumps({"format": "anomaly-chat-knowledge", "format_version": 1, "classes": [], "rules": [],
                       "references": [], "tombstones": [], **changes})


def _zip(path, entries: dict, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


@pytest.fixture
def hostile_tombstone(tmp_path):
    return _zip(tmp_path / "hostile.zip", {MANIFEST: _manifest(tombstones=[SEED_RULE, "class:bottle"])})


def test_a_tombstone_for_a_seed_rule_deletes_nothing_by_default(kb, hostile_tombstone):
    counts = kb.import_archive(hostile_tombstone)
    assert SEED_RULE in [r.id for r in kb.rules("bottle")]
    assert "bottle" in kb.classes()
    assert not counts["deletions_applied"]
    assert [d["id"] for d in counts["deletions"]] == [SEED_RULE, "class:bottle"]


def test_an_unapplied_tombstone_does_not_block_a_later_seed(kb, hostile_tombstone):
    kb.import_archive(hostile_tombstone)
    assert SEED_RULE not in kb._meta.tombstones()


def test_deletions_apply_only_with_the_flag(kb, hostile_tombstone):
    counts = kb.import_archive(hostile_tombstone, apply_deletions=True)
    assert counts["deletions_applied"]
    assert SEED_RULE not in [r.id for r in kb.rules("bottle", include_inactive=True)]


def test_cli_lists_the_deletions_and_says_how_to_apply_them(home, capsys, hostile_tombstone):
    assert main(["kb", "import", str(hostile_tombstone)]) == 0
    out = capsys.readouterr().out
    assert f"rule {SEED_RULE} (bottle)" in out and "NOT deleted" in out and "--apply-deletions" in out


def test_cli_lists_the_deletions_before_it_applies_them(home, capsys, hostile_tombstone):
    assert main(["kb", "import", str(hostile_tombstone), "--apply-deletions"]) == 0
    out = capsys.readouterr().out
    assert out.index(f"rule {SEED_RULE}") < out.index("Imported") < out.index("Deleted 2 item(s)")
    assert main(["kb", "rules", "bottle", "--json"]) == 0
    assert SEED_RULE not in capsys.readouterr().out


def test_a_zip_bomb_is_refused_before_anything_is_unpacked(kb, tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", {MANIFEST: _manifest() + " " * (200 * 2**20)}, zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2**20  # 200 MiB of spaces pack into a few hundred KiB
    with pytest.raises(InputError, match="zip bomb"):
        kb.import_archive(bomb)


def test_an_archive_unpacking_beyond_the_cap_is_refused(tmp_path):
    big = _zip(tmp_path / "big.zip", {MANIFEST: _manifest(), "files/" + "a" * 64 + ".png": b"x" * 5000})
    with pytest.raises(InputError, match="would unpack to"):
        read_archive(big, ImportLimits(max_unpacked_bytes=4096))


def test_an_archive_with_too_many_entries_is_refused(tmp_path):
    entries = {MANIFEST: _manifest(), **{f"files/{i:064x}.png": b"" for i in range(20)}}
    with pytest.raises(InputError, match="entries"):
        read_archive(_zip(tmp_path / "many.zip", entries), ImportLimits(max_entries=10))


def test_an_archive_larger_than_the_free_space_is_refused(tmp_path, monkeypatch):
    import knowledge.archive as archive_module

    archive = _zip(tmp_path / "kb.zip", {MANIFEST: _manifest()})
    monkeypatch.setattr(archive_module.shutil, "disk_usage", lambda path: type("U", (), {"free": 1000})())
    with pytest.raises(InputError, match="free some space"):
        read_archive(archive, store_dir=tmp_path)
