"""The inspection log: one line per verdict the app gives (time, user, class, file name and SHA-256, verdict,
score, backend and model), browsed in the app and exported as CSV or JSON (`anomaly-chat log export`).

Kept per person as JSON lines in <home>/history/<user key>/inspections.jsonl (the folder of
assistant/app/history.py), rotated at MAX_FILE_BYTES into inspections.1.jsonl ... .KEEP_ROTATED.jsonl,
so a person's log holds at most about (KEEP_ROTATED + 1) x MAX_FILE_BYTES (some 250,000 inspections).
The CSV neutralises cells a spreadsheet would run as a formula (a file name like "=HYPERLINK(...)").
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from filelock import FileLock

from assistant.app.history import user_dir
from tools.errors import InputError

FIELDS = ("time", "user", "class_name", "file_name", "sha256", "verdict", "score", "backend", "model")
LOG_NAME = "inspections.jsonl"
MAX_FILE_BYTES = 16 * 1024 * 1024
KEEP_ROTATED = 4
_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def entry(user: str, artifact, verdict) -> dict:
    """The log line of one verdict on one file."""
    return {"time": datetime.now(UTC).isoformat(timespec="seconds"), "user": user,
            "class_name": verdict.class_name or "", "file_name": artifact.name, "sha256": artifact.sha256,
            "verdict": verdict.label, "score": None if verdict.score is None else round(float(verdict.score), 4),
            "backend": verdict.backend, "model": verdict.model}


def record(home, user: str, artifact, verdict) -> dict:
    """Append one verdict to the person's log (rotating it when full); returns the line written."""
    line = entry(user, artifact, verdict)
    folder = user_dir(home, user)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".log.lock"), timeout=30):
        path = folder / LOG_NAME
        if path.is_file() and path.stat().st_size >= MAX_FILE_BYTES:
            _rotate(folder)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return line


def _rotate(folder: Path) -> None:
    for number in range(KEEP_ROTATED, 0, -1):
        older = folder / f"inspections.{number}.jsonl"
        newer = folder / (LOG_NAME if number == 1 else f"inspections.{number - 1}.jsonl")
        if newer.is_file():
            os.replace(newer, older)


def entries(home, user: str | None = None, since: datetime | None = None) -> list[dict]:
    """Log lines, oldest first: one person's (by name), or everyone's; only those at or after `since`."""
    root = Path(home) / "history"
    folders = [user_dir(home, user)] if user is not None else sorted(p for p in root.glob("*") if p.is_dir())
    found = []
    for folder in folders:
        for path in [folder / f"inspections.{n}.jsonl" for n in range(KEEP_ROTATED, 0, -1)] + [folder / LOG_NAME]:
            found += _read_lines(path)
    if user is not None:
        found = [line for line in found if line.get("user") == user]
    if since is not None:
        found = [line for line in found if _time(line) >= since]
    return sorted(found, key=lambda line: line.get("time", ""))


def _read_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    lines = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for text in handle:
            try:
                line = json.loads(text)
            except ValueError:
                continue  # a line cut by a crash: the others still count
            if isinstance(line, dict):
                lines.append({key: line.get(key) for key in FIELDS})
    return lines


def _time(line: dict) -> datetime:
    try:
        return datetime.fromisoformat(str(line.get("time")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A start time from '2026-01-05', '2026-01-05T08:00' (UTC unless an offset is given) or '7d', '12h', '30m', '2w'."""
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(text or "")
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--since {text!r} is not a date or a duration; use e.g. 2026-01-05, "
                         "2026-01-05T08:00 or 7d, 12h, 30m") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def as_csv(lines: list[dict]) -> str:
    """The lines as CSV with a header row; no cell can start a spreadsheet formula."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for line in lines:
        writer.writerow({key: _cell(line.get(key)) for key in FIELDS})
    return buffer.getvalue()


def _cell(value):
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def as_json(lines: list[dict]) -> str:
    return json.dumps(lines, ensure_ascii=False, indent=2) + "\n"


def write_file(path: Path, text: str) -> None:
    """Write an export whole or not at all (FILE.part renamed into place; a failure keeps an older FILE)."""
    path = Path(path)
    temporary = path.with_name(path.name + ".part")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InputError(f"cannot write {path.name}: {exc.strerror or exc}; choose another place") from None
