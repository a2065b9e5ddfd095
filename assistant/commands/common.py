"""Helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
import threading
from functools import lru_cache

from assistant.config import Settings, load_settings


def settings_from(args, **overrides) -> Settings:
    """Settings with the global flags (--home, --config) and command flags applied."""
    explicit = {"home": getattr(args, "home", None), "config": getattr(args, "config", None)}
    explicit.update(overrides)
    return load_settings(explicit)


@lru_cache(maxsize=4)
def _open_kb(home: str, chroma_url: str | None, embedding_model_path: str | None):
    from knowledge.store import KnowledgeBase

    return KnowledgeBase.open(home, chroma_url=chroma_url, embedding_model_path=embedding_model_path)


_OPEN_LOCK = threading.Lock()


def open_kb(settings: Settings):
    """The knowledge base the settings point at (embedded Chroma, or the server at chroma_url).

    One instance per store and process: two Chroma clients on one path must not be opened at once.
    """
    with _OPEN_LOCK:
        return _open_kb(str(settings.kb_dir), settings.chroma_url, settings.embedding_model_path)


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def log_inspection(session, verdict) -> None:
    """Append a CLI verdict to the inspection log (`anomaly-chat log export`), as user "cli:<login name>";
    a log that cannot be written is one line on stderr, never a failed inspection."""
    import getpass

    from assistant.app import inspection_log

    artifact = session.last_query()
    if artifact is None or verdict is None:
        return
    try:
        user = f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "cli"
    try:
        inspection_log.record(session.settings.home, user, artifact, verdict)
    except OSError as exc:
        print(f"warning: the inspection log was not written ({exc.strerror or exc})", file=sys.stderr)
