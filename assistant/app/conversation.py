"""One browser's conversation in the chat app: its Session, its chat view and its files.

The UI keeps one Conversation per browser tab (in a gr.State), so two people never see each
other's history or uploads. A turn turns the person's message into Session events and the events
into chat messages; every failure ends as a one-line message in the chat, never a traceback.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from assistant.app.access import User, require_expert
from assistant.app.chat_view import ChatView, one_line, shown_text
from assistant.events import Event, new_step_id
from assistant.prompts import PARTS, Strategy
from tools.errors import BackendError, InputError

log = logging.getLogger(__name__)

# The paper's prompt parts, named as the person sees them.
PROMPT_SWITCHES = {"class information": "class", "normality rules": "rules", "reference images": "reference",
                   "expert evidence": "expert"}


def strategy_from_switches(switches) -> str:
    """The strategy string for the switched-on prompt parts ("naive" when none is on)."""
    chosen = {PROMPT_SWITCHES[s] for s in switches or [] if s in PROMPT_SWITCHES}
    return "+".join(p for p in PARTS if p in chosen) or "naive"


def switches_for(strategy: str) -> list[str]:
    """The switches that are on for a strategy string (the app's default strategy)."""
    parts = Strategy.parse(strategy).parts
    return [label for label, part in PROMPT_SWITCHES.items() if part in parts]


def display_name(path: str) -> str:
    """The name a person gave a file (the last part of its upload path), cleaned: for display only."""
    from tools.inputs.artifacts import display_name as shown_name

    return shown_name(Path(path).name)


class Conversation:
    """The Session behind one chat, created at the first message with the person's rights."""

    def __init__(self, settings, user: User, open_kb: Callable, files_root: Path):
        self.id = uuid.uuid4().hex[:12]
        self.settings = settings
        self.user = user
        self.open_kb = open_kb
        self.files_dir = Path(files_root) / self.id
        self.view = ChatView(self.files_dir)
        self.session = None
        self.backend = None  # built once per choice (the settings' one, or the person's) and passed on

    def ensure_session(self):
        """The Session, made on first use (opening the knowledge base is the slow part)."""
        if self.session is None:
            from assistant.backends.registry import create_backend
            from assistant.session import Session

            self.backend = self.backend or create_backend(self.settings)
            self.session = Session(self.settings, self.open_kb(), self.backend, author=self.user.name,
                                   can_edit_knowledge=self.user.can_edit_knowledge)
        return self.session

    def turn(self, text: str, files: list[str], *, class_name: str | None = None, switches=None,
             references: int | None = None) -> Iterator[list[dict]]:
        """Run one message; yields the chat's messages after every change."""
        text, files = (text or "").strip(), list(files or [])
        names = [display_name(f) for f in files]
        self.view.add_user(text, files, names)
        yield list(self.view.messages)
        try:
            if self.session is None:
                yield from self._start()
            strategy = strategy_from_switches(switches) if switches is not None else None
            events = self.ensure_session().send(text, files, class_name=(class_name or "").strip() or None,
                                                strategy=strategy, references=references, names=names)
            for event in events:
                self.view.apply(event)
                yield list(self.view.messages)
        except InputError as exc:
            self.view.add_error(str(exc))
        except BackendError as exc:
            self.view.add_error(f"the model backend failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - the chat shows one line; the log keeps the traceback
            log.exception("turn failed in conversation %s", self.id)
            self.view.add_error(f"internal error ({type(exc).__name__}); the app keeps working: try again, "
                                "or ask the administrator to look at the server log")
        yield list(self.view.messages)

    def _start(self) -> Iterator[list[dict]]:
        """Make the Session as a visible step: the first one opens the knowledge base, which takes a while."""
        step, title = new_step_id(), "🚀 Start the session"
        self.view.apply(Event("step", title=title, status="pending", step_id=step, text="opening the knowledge base…"))
        yield list(self.view.messages)
        started = time.perf_counter()
        backend = self.ensure_session().backend
        self.view.apply(Event("step", title=title, status="done", step_id=step, duration_s=time.perf_counter() - started,
                              text=f"backend {backend.name}, model {backend.model}"))
        yield list(self.view.messages)

    def last_query(self):
        """The Artifact analysed last in this conversation, or None."""
        session = self.session
        if session is None or session.last_turn is None:
            return None
        return session.artifacts.get(session.last_turn.artifact_id)

    def last_class(self) -> str | None:
        session = self.session
        return session.last_turn.class_name if session is not None and session.last_turn else None

    def use_backend(self, user: User, name: str, model: str | None, base_url: str | None) -> str:
        """Switch this conversation's backend (experts only: a base URL decides where requests go, and is
        checked by the registry; the configured key never goes to a base URL chosen here). Every change
        and every refusal is logged with its author; a URL is logged without password, query or fragment."""
        from assistant.backends.registry import create_backend
        from assistant.backends.urls import shown_url

        try:
            require_expert(user, "change the backend")
            self.backend = create_backend(self.settings, name, model=model or None, base_url=base_url or None)
        except InputError as exc:
            log.warning("backend change refused for %s (%s) in conversation %s: %s", user.name, user.role, self.id,
                        one_line(str(exc)))
            raise
        if self.session is not None:
            self.session.backend = self.backend
        log.info("%s (%s) set conversation %s to backend %s, model %s, base URL %s", user.name, user.role, self.id,
                 self.backend.name, self.backend.model, shown_url(getattr(self.backend, "base_url", None)))
        return f"Using backend **{self.backend.name}**, model **{shown_text(self.backend.model)}**."

    def clear(self) -> None:
        """Start over: a new Session and an empty chat (the files of this chat are removed)."""
        self.close()
        self.session = None
        self.view = ChatView(self.files_dir)

    def close(self) -> None:
        """Remove this conversation's files (called when the browser's state expires)."""
        shutil.rmtree(self.files_dir, ignore_errors=True)
