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

from assistant.app import inspection_log
from assistant.app import references as refs
from assistant.app.access import User, require_expert
from assistant.app.chat_view import ChatView, one_line, shown_text
from assistant.app.history import ConversationStore, LiveSessions, copy_pictures
from assistant.events import Event, new_step_id
from assistant.prompts import PARTS, Strategy
from tools.errors import BackendError, InputError

log = logging.getLogger(__name__)
REOPENED = ("This conversation was reopened from the history; the files it talked about are no longer loaded, "
            "so attach a file again to ask about it.")

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
    """The Session behind one chat, created at the first message with the person's rights; kept in the
    person's history after every turn (assistant/app/history.py), and its verdicts in the inspection log."""

    def __init__(self, settings, user: User, open_kb: Callable, files_root: Path, live: LiveSessions | None = None):
        self.id = uuid.uuid4().hex[:12]
        self.settings = settings
        self.user = user
        self.open_kb = open_kb
        self.files_dir = Path(files_root) / uuid.uuid4().hex[:12]
        self.view = ChatView(self.files_dir)
        self.session = None
        self.backend = None  # built once per choice (the settings' one, or the person's) and passed on
        self.history = ConversationStore(settings.home, user.name)
        self.live = live  # the process's pages, so that a reloaded page continues this conversation's Session
        self.offer: refs.Offer | None = None  # files waiting for the person's "store as references" button
        self.taken_over = False  # another page reopened this conversation: continue as a new one
        self.reopened = False  # shown from the history without its Session

    def ensure_session(self):
        """The Session, made on first use (opening the knowledge base is the slow part)."""
        if self.session is None:
            from assistant.backends.registry import create_backend
            from assistant.session import Session

            self.backend = self.backend or create_backend(self.settings)
            self.session = Session(self.settings, self.open_kb(), self.backend, author=self.user.name,
                                   can_edit_knowledge=self.user.can_edit_knowledge)
            if self.reopened:
                self.session.missing_analysis = REOPENED
        return self.session

    def turn(self, text: str, files: list[str], *, class_name: str | None = None, switches=None,
             references: int | None = None) -> Iterator[list[dict]]:
        """Run one message; yields the chat's messages after every change."""
        text, files = (text or "").strip(), list(files or [])
        names = [display_name(f) for f in files]
        self.view.settle()  # a new message passes over an open offer
        self.view.add_user(text, files, names)
        self.offer = None
        yield list(self.view.messages)
        try:
            if self.session is None:
                yield from self._start()
            if not self._offer_references(text, files, names, class_name):
                yield from self._send(text, files, names, class_name, switches, references)
        except InputError as exc:
            self.view.add_error(str(exc))
        except BackendError as exc:
            self.view.add_error(f"the model backend failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - the chat shows one line; the log keeps the traceback
            log.exception("turn failed in conversation %s", self.id)
            self.view.add_error(f"internal error ({type(exc).__name__}); the app keeps working: try again, "
                                "or ask the administrator to look at the server log")
        self.keep()
        yield list(self.view.messages)

    def _send(self, text, files, names, class_name, switches, references) -> Iterator[list[dict]]:
        session = self.ensure_session()
        if not session.turn_lock.acquire(blocking=False):  # another page of this conversation is mid-turn
            raise InputError("this conversation is answering in another tab; wait for that answer, then try again")
        try:
            strategy = strategy_from_switches(switches) if switches is not None else None
            events = session.send(text, files, class_name=(class_name or "").strip() or None, strategy=strategy,
                                  references=references, names=names)
            for event in events:
                self.view.apply(event)
                if event.kind == "verdict":
                    self._log(event.verdict)
                yield list(self.view.messages)
        finally:
            session.turn_lock.release()

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
        return self.session.last_query() if self.session is not None else None

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
        """Start over: a new Session and an empty chat (the files of this chat are removed; the history keeps
        the old conversation, and a reload now opens the new, empty one)."""
        self.close()
        self.id, self.session, self.offer, self.reopened = uuid.uuid4().hex[:12], None, None, False
        self.view = ChatView(self.files_dir)
        self._keep_quietly(lambda: self.history.set_current(None))

    def close(self) -> None:
        """Remove this conversation's files (called when the browser's state expires)."""
        shutil.rmtree(self.files_dir, ignore_errors=True)
        if self.live is not None:
            self.live.release(self.id, self)

    # -- history, log and reference offers -----------------------------------------------------------
    def reopen(self, conversation_id: str | None = None) -> bool:
        """Show a kept conversation (default: the one the person's page last showed) and continue it; its
        Session too while another page of this process still holds it. False when there is none."""
        conversation_id = conversation_id or self.history.current()
        messages = self.history.load(conversation_id) if conversation_id else None
        if messages is None:
            return False
        self.id, self.offer, self.taken_over = conversation_id, None, False
        self.view.restore(copy_pictures(messages, self.files_dir))
        previous = self.live.claim(conversation_id, self) if self.live is not None else None
        self.session = getattr(previous, "session", None)
        self.backend = getattr(previous, "backend", None) or self.backend
        self.reopened = self.session is None
        self._keep_quietly(lambda: self.history.set_current(conversation_id))
        return True

    def keep(self) -> None:
        """Save the chat into the person's history (a failing disk is logged, never shown as a broken turn)."""
        if self.taken_over:  # another page continues the kept one: this page's turns become a new conversation
            self.id, self.taken_over = uuid.uuid4().hex[:12], False
        if self.live is not None:
            self.live.claim(self.id, self)
        self._keep_quietly(lambda: (self.history.save(self.id, self.view.messages), self.history.set_current(self.id)))

    def _keep_quietly(self, action) -> None:
        try:
            action()
        except OSError:
            log.exception("cannot keep the history of conversation %s", self.id)

    def _log(self, verdict) -> None:
        artifact = self.last_query()
        if artifact is not None:
            self._keep_quietly(lambda: inspection_log.record(self.settings.home, self.user.name, artifact, verdict))

    def _offer_references(self, text: str, files: list[str], names: list[str], class_name: str | None) -> bool:
        """When the message says its files (or the last inspected one) are normal, offer to store them
        instead of inspecting; the person decides with a button. False when there is nothing to offer."""
        session = self.session
        last = refs.Inspected(self.last_query(), self.last_class(), session.verdicts[-1]) if self.last_query() else None
        offer = refs.offer_from_message(text, files, names, class_box=class_name,
                                        known_classes=session.kb.classes(), last=last)
        if offer is None:
            return False
        if not self.user.can_edit_knowledge:
            self.view.say(f"Only experts may store reference normals; you are signed in as {self.user.name} "
                          f"({self.user.role}). Ask an expert, or send the files with a question to inspect them.")
            return True
        self.offer = offer if offer.class_name else None
        if self.offer is None:
            self.view.say(f"📌 {offer.question()}")
        else:
            self.view.ask(f"📌 {offer.question()}", refs.OFFER_CHOICES)
        return True

    def answer_offer(self, choice: str) -> list[dict]:
        """The person's button under the offer: store the files as reference normals, or not."""
        offer, self.offer = self.offer, None
        self.view.settle()
        if choice == refs.STORE:
            self.view.say(refs.store_offer(self.open_kb(), self.user, offer, self.settings))
        else:
            self.view.say("Nothing stored. To inspect those files instead, send them again with a question.")
        self.keep()
        return list(self.view.messages)
