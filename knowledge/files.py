"""Reference files kept by content: files/<first two hex digits>/<sha256><suffix>.

A file is first written under tmp/ and then renamed into place, so a crash leaves either no file
or a whole one (the rename is atomic), never a half-written file under its final name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

_SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")
_STORED_NAME = re.compile(r"^[0-9a-f]{64}(\.[a-z0-9]{1,10})?$")
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_suffix(name: str) -> str:
    """The file's suffix, lower case, if it is a plain one (kept so that loaders can tell the type)."""
    suffix = Path(name).suffix.lower()
    return suffix if _SUFFIX.match(suffix) else ""


def is_stored_name(name: str) -> bool:
    """True for a name of the form <sha256><suffix>, the only names the store and its archives use."""
    return bool(_STORED_NAME.match(name))


class FileStore:
    """The content-addressed files of one knowledge base directory."""

    def __init__(self, root: Path):
        self.root = root
        self.files_dir = root / "files"
        self.tmp_dir = root / "tmp"

    def relative(self, sha256: str, suffix: str) -> str:
        """Where a file with this content is kept, relative to the store directory."""
        return f"files/{sha256[:2]}/{sha256}{suffix}"

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def put(self, source: Path, sha256: str, suffix: str) -> str:
        """Copy source into the store (once per content); returns its relative path."""
        relative = self.relative(sha256, suffix)
        target = self.absolute(relative)
        if not target.is_file():
            with open(source, "rb") as src, self.temp_file() as (tmp_path, dst):
                shutil.copyfileobj(src, dst, _CHUNK)
                dst.flush()
                os.fsync(dst.fileno())
            self.adopt(tmp_path, relative)
        return relative

    def temp_file(self):
        """A new file under tmp/ (opened for writing), removed by repair() if never adopted."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, suffix=".part")
        return _TempFile(Path(name), os.fdopen(fd, "wb"))

    def adopt(self, tmp_path: Path, relative: str) -> None:
        """Move a finished temporary file to its final name (atomic on one file system)."""
        target = self.absolute(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_path, target)

    def stored(self) -> set[str]:
        """Relative paths of every stored file."""
        if not self.files_dir.is_dir():
            return set()
        return {f"files/{p.parent.name}/{p.name}" for p in self.files_dir.glob("*/*") if p.is_file()}

    def remove(self, relative: str) -> None:
        self.absolute(relative).unlink(missing_ok=True)

    def clear_tmp(self) -> int:
        """Remove leftovers of interrupted writes; returns how many."""
        if not self.tmp_dir.is_dir():
            return 0
        leftovers = [p for p in self.tmp_dir.iterdir() if p.is_file()]
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)


class _TempFile:
    """Context manager giving (path, handle); the handle is closed on exit, the file kept."""

    def __init__(self, path: Path, handle):
        self.path, self.handle = path, handle

    def __enter__(self):
        return self.path, self.handle

    def __exit__(self, *exc):
        self.handle.close()
        if exc[0] is not None:
            self.path.unlink(missing_ok=True)
