"""Each person's conversations, kept under the app's home, so that a reload or a later visit finds them.

    <home>/history/<user key>/conversations/<conversation id>/conversation.json
                                                            /pictures/<hash>.png
    <home>/history/<user key>/current      the conversation the person's page opens with ('' = a new one)

The user key is a hash of the person's name and a conversation id is random hex made by the app:
nothing a person types becomes a path (ids read back are checked against CONVERSATION_ID). Bounded:
pictures are kept re-encoded at most PICTURE_SIDE pixels, at most MAX_PICTURES per conversation,
MAX_MESSAGES messages, MAX_CONVERSATIONS and MAX_BYTES per person (the oldest conversations go first);
uploads other than pictures (series, clouds, videos) keep only their names. Writes are atomic (a
temporary file renamed into place) under a lock file per person, so app processes may share the home.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock
from PIL import Image

from assistant.app.chat_view import IMAGE_SUFFIXES, shown_text

CONVERSATION_ID = re.compile(r"^[0-9a-f]{12}$")
PICTURE_NAME = re.compile(r"^[0-9a-f]{32}\.png$")
PICTURE_SIDE = 1024
MAX_PICTURES = 120
MAX_MESSAGES = 600
MAX_CONVERSATIONS = 60
MAX_BYTES = 300 * 1024 * 1024
VERDICT_MARK = "verdict-badge"  # a message holding a verdict (chat_view.badge_html)


def user_key(name: str) -> str:
    """The folder name of a person's history: a hash of their name, never the name itself."""
    return hashlib.sha256(f"anomaly-chat user:{name}".encode()).hexdigest()[:24]


def user_dir(home, name: str) -> Path:
    return Path(home) / "history" / user_key(name)


@dataclass(frozen=True)
class Summary:
    """One kept conversation, as the History tab lists it."""

    id: str
    title: str
    updated: str  # 'YYYY-MM-DD HH:MM' UTC
    inspections: int


class ConversationStore:
    """One person's kept conversations."""

    def __init__(self, home, user_name: str):
        self.root = user_dir(home, user_name)
        self.folder = self.root / "conversations"
        self.lock = FileLock(str(self.root / ".lock"), timeout=30)
        self._kept: dict[str, str] = {}  # source picture path -> kept name (each picture is encoded once)

    def save(self, conversation_id: str, messages: list[dict]) -> None:
        """Keep a conversation's messages (and its pictures); the oldest conversations go beyond the bounds."""
        _check_id(conversation_id)
        folder = self.folder / conversation_id
        (folder / "pictures").mkdir(parents=True, exist_ok=True)
        kept = [self._kept_message(folder, m) for m in messages[-MAX_MESSAGES:]]
        record = {"id": conversation_id, "title": _title(messages), "messages": kept,
                  "inspections": sum(VERDICT_MARK in json.dumps(m["content"]) for m in kept)}
        with self.lock:
            _write_atomic(folder / "conversation.json", json.dumps(record, ensure_ascii=False))
            self._prune(keep=conversation_id)

    def load(self, conversation_id: str) -> list[dict] | None:
        """A kept conversation's messages, pictures as paths into the store (None when there is none)."""
        if not CONVERSATION_ID.match(conversation_id or ""):
            return None
        folder = self.folder / conversation_id
        try:
            record = json.loads((folder / "conversation.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return [_message_from_record(folder, m) for m in record.get("messages", [])]

    def summaries(self) -> list[Summary]:
        """Every kept conversation, the most recently changed first."""
        found = []
        for path in self._records():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            found.append(Summary(path.parent.name, record.get("title", ""), _stamp(path), record.get("inspections", 0)))
        return found

    def current(self) -> str | None:
        """The conversation the person's page opens with (None: a new one)."""
        try:
            value = (self.root / "current").read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return value if CONVERSATION_ID.match(value) else None

    def set_current(self, conversation_id: str | None) -> None:
        if conversation_id:
            _check_id(conversation_id)
        self.root.mkdir(parents=True, exist_ok=True)
        with self.lock:
            _write_atomic(self.root / "current", conversation_id or "")

    def _records(self) -> list[Path]:
        records = [p / "conversation.json" for p in self.folder.glob("*") if CONVERSATION_ID.match(p.name)]
        return sorted((p for p in records if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)

    def _kept_message(self, folder: Path, message: dict) -> dict:
        content = message.get("content")
        parts = content if isinstance(content, list) else [content]
        kept = [self._kept_part(folder, part) for part in parts]
        return {"role": message.get("role", "assistant"), "content": kept if isinstance(content, list) else kept[0],
                "metadata": message.get("metadata")}

    def _kept_part(self, folder: Path, part):
        if not isinstance(part, dict) or "path" not in part:
            return part if isinstance(part, str) else ""
        name = self._keep_picture(folder, str(part["path"]))
        if name is None:
            return f"📎 {shown_text(part.get('alt_text') or 'a file')} (not kept in the history)"
        return {"picture": name, "alt_text": part.get("alt_text")}

    def _keep_picture(self, folder: Path, source: str) -> str | None:
        if source in self._kept and (folder / "pictures" / self._kept[source]).is_file():
            return self._kept[source]
        pictures = folder / "pictures"
        if Path(source).suffix.lower() not in IMAGE_SUFFIXES or len(list(pictures.glob("*.png"))) >= MAX_PICTURES:
            return None
        try:
            with Image.open(source) as image:
                picture = image.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        picture.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
        name = hashlib.sha256(picture.tobytes()).hexdigest()[:32] + ".png"
        if not (pictures / name).is_file():
            temporary = pictures / f".{name}.part"
            picture.save(temporary, format="PNG", compress_level=1)  # 4x quicker than the default, ~30 % larger
            os.replace(temporary, pictures / name)
        self._kept[source] = name
        return name

    def _prune(self, keep: str) -> None:
        records = [p for p in self._records() if p.parent.name != keep]
        for path in records[MAX_CONVERSATIONS - 1:]:
            shutil.rmtree(path.parent, ignore_errors=True)
        records = records[:MAX_CONVERSATIONS - 1]
        total = sum(_size(p.parent) for p in records) + _size(self.folder / keep)
        while records and total > MAX_BYTES:
            oldest = records.pop()
            total -= _size(oldest.parent)
            shutil.rmtree(oldest.parent, ignore_errors=True)


def copy_pictures(messages: list[dict], folder: Path) -> list[dict]:
    """Kept messages with their pictures copied into a folder the app serves (the history is never served)."""
    folder.mkdir(parents=True, exist_ok=True)

    def copied(part):
        if isinstance(part, dict) and "path" in part:
            target = folder / Path(part["path"]).name
            try:
                shutil.copyfile(part["path"], target)
            except OSError:
                return "(a picture that is no longer kept)"
            return {**part, "path": str(target)}
        return part

    out = []
    for message in messages:
        content = message["content"]
        out.append({**message, "content": [copied(p) for p in content] if isinstance(content, list) else copied(content)})
    return out


def _check_id(conversation_id: str) -> None:
    if not CONVERSATION_ID.match(conversation_id or ""):
        raise ValueError(f"not a conversation id: {conversation_id!r}")


def _message_from_record(folder: Path, message: dict) -> dict:
    content = message.get("content")
    parts = content if isinstance(content, list) else [content]
    shown = [_part_from_record(folder, part) for part in parts]
    restored = {"role": message.get("role", "assistant"), "content": shown if isinstance(content, list) else shown[0]}
    if message.get("metadata"):
        restored["metadata"] = message["metadata"]
    return restored


def _part_from_record(folder: Path, part):
    if isinstance(part, dict) and PICTURE_NAME.match(str(part.get("picture", ""))):
        return {"path": str(folder / "pictures" / part["picture"]), "alt_text": part.get("alt_text")}
    return part if isinstance(part, str) else ""


def _title(messages: list[dict]) -> str:
    """The first thing the person wrote (or the first file they sent), shortened."""
    for message in messages:
        if message.get("role") != "user":
            continue
        parts = message["content"] if isinstance(message.get("content"), list) else [message.get("content")]
        texts = [p for p in parts if isinstance(p, str) and p.strip()]
        names = [p.get("alt_text") for p in parts if isinstance(p, dict) and p.get("alt_text")]
        title = " · ".join([*names[:1], *texts[:1]])
        if title:
            return title if len(title) <= 80 else title[:79] + "…"
    return "(empty)"


def _stamp(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M")


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class LiveSessions:
    """The Sessions of recent conversations in this process, so that a reloaded page continues one
    (follow-ups keep working) rather than only showing it; the most recent CAPACITY are kept."""

    CAPACITY = 32

    def __init__(self):
        self._owners: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, conversation_id: str, owner) -> object | None:
        """Make `owner` the conversation's page; returns the previous page, which is told it was taken over
        (its next turn continues as a new conversation, so two pages never write one record)."""
        with self._lock:
            previous = self._owners.pop(conversation_id, None)
            self._owners[conversation_id] = owner
            while len(self._owners) > self.CAPACITY:
                self._owners.popitem(last=False)
        if previous is not None and previous is not owner:
            previous.taken_over = True
            return previous
        return None

    def release(self, conversation_id: str, owner) -> None:
        with self._lock:
            if self._owners.get(conversation_id) is owner:
                del self._owners[conversation_id]
