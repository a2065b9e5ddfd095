"""Making records and files agree again after a crash: no file without a record, no record without a file.

Files are written before their records, so a process killed in between leaves at worst a file
nobody refers to (removed here) or a temporary file under tmp/ (removed here). A record whose
file went missing or changed size (someone deleted or truncated it) is dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from knowledge.files import FileStore, sha256_of
from knowledge.references import ReferenceShelf


@dataclass
class RepairReport:
    """What repair() changed."""

    records_removed: int = 0  # reference records whose file was missing or damaged
    files_removed: int = 0  # stored files no record refers to
    temp_files_removed: int = 0  # leftovers of interrupted writes

    @property
    def changed(self) -> bool:
        return any(asdict(self).values())

    def to_dict(self) -> dict:
        return asdict(self)


def repair(shelf: ReferenceShelf, files: FileStore, *, verify_hashes: bool = False) -> RepairReport:
    """Remove broken reference records, orphan files and temporary files; the caller holds the write lock."""
    report = RepairReport(temp_files_removed=files.clear_tmp())
    found = shelf.records()
    broken = [ref_id for ref_id, meta in zip(found["ids"], found["metadatas"], strict=True)
              if not _file_intact(files, meta, verify_hashes)]
    shelf.delete(broken)
    report.records_removed = len(broken)
    dropped = set(broken)
    referenced = {m["file"] for i, m in zip(found["ids"], found["metadatas"], strict=True) if i not in dropped}
    for orphan in sorted(files.stored() - referenced):
        files.remove(orphan)
        report.files_removed += 1
    return report


def _file_intact(files: FileStore, meta: dict, verify_hash: bool) -> bool:
    path = files.absolute(meta["file"])
    try:
        if path.stat().st_size != meta["size"]:
            return False
    except OSError:
        return False
    return not verify_hash or sha256_of(path) == meta["sha256"]
