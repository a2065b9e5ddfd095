"""A conversation: its files, encoded images, verdicts and history, and the turns that use them.

`Session.send(text, files)` is the one entry point of the UI and the CLI: with files it analyses
the first one (the others are references for this turn) by running the analysis pipeline
(assistant/pipeline.py) step by step; without, it answers a follow-up about the last analysis, or
chats (teaching, questions about the knowledge base). It yields Events.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from assistant import agent, pipeline, prompts
from assistant.analysis import TurnContext, analysis_messages, chat_message, trim_history
from assistant.backends.base import Backend, EncodedImages, Message
from assistant.events import Event, new_step_id
from assistant.prompts import Strategy
from assistant.verdict import Verdict, build_verdict
from tools.agent.evidence import expert_name
from tools.errors import InputError
from tools.inputs.artifacts import Artifact


@dataclass
class ToolCtx:
    """What tools may use from this session (tools.agent.registry.ToolContext)."""

    artifacts: dict
    kb: object
    author: str
    can_edit_knowledge: bool
    user_text: str = ""
    class_name: str | None = None
    cache_dir: Path | None = None
    evidence: object = None  # the last analysis' Evidence (the show_regions tool looks into it)
    rules: list = field(default_factory=list)  # the rules the last analysis used


class Session:
    """One conversation with one backend (built by the caller once, or here from the settings)."""

    def __init__(self, settings, kb, backend: Backend | None = None, *, author: str = "user",
                 can_edit_knowledge: bool = True):
        from assistant.backends.registry import create_backend

        self.id = uuid.uuid4().hex[:12]
        self.settings = settings
        self.kb = kb
        self.backend = backend or create_backend(settings)
        self.ctx = ToolCtx({}, kb, author, can_edit_knowledge, cache_dir=settings.cache_dir)
        self.history: list[Message] = []
        self.verdicts: list[Verdict] = []
        self.last_turn: TurnContext | None = None
        self.missing_analysis: str | None = None  # why there is no last analysis to talk about (a refused upload)
        self.turn_lock = threading.Lock()  # one turn at a time, also when two pages of the app share this session
        self.images = EncodedImages(settings.image_long_side)

    @property
    def artifacts(self) -> dict[str, Artifact]:
        return self.ctx.artifacts

    def last_query(self) -> Artifact | None:
        """The Artifact analysed last in this session, or None."""
        return self.artifacts.get(self.last_turn.artifact_id) if self.last_turn is not None else None

    def send(self, text: str = "", files=(), *, class_name: str | None = None, strategy: str | None = None,
             references: int | None = None, names=None, extra_rules=()) -> Iterator[Event]:
        """One turn. Files are analysed (the first is the query); text alone is a follow-up or chat."""
        self.ctx.user_text = text or ""
        if files:
            return self._analyse_or_forget(list(files), text, class_name, strategy, references, names, extra_rules)
        return self._converse(text)

    def _analyse_or_forget(self, files, *args) -> Iterator[Event]:
        """Analyse; when that fails (a refused upload, a failing backend), the earlier analysis is no longer
        "the last one": a follow-up must not answer about the previous file as if it were this one."""
        self.missing_analysis = None
        try:
            yield from self._analyse(files, *args)
        except Exception as exc:
            names = args[4] or [Path(f).name for f in files]
            self.missing_analysis = f"The last upload ({names[0]}) was not inspected: {one_line(exc)}"
            self.last_turn = self.ctx.evidence = None
            raise

    # ---- analysis -------------------------------------------------------------------------
    def _analyse(self, files, question, class_name, strategy_text, k, names, extra_rules) -> Iterator[Event]:
        settings, kb = self.settings, self.kb
        strategy = Strategy.parse(strategy_text or settings.strategy)
        k = settings.references if k is None else k
        artifacts = yield from self._step("📥 Load files", lambda: self._remember(pipeline.load_files(files, names)))
        query = artifacts[0]
        turn = TurnContext("analysis", question=question, modality=query.kind, artifact_id=query.id, strategy=strategy,
                           known_classes=kb.classes())
        class_name = class_name or pipeline.class_in_question(turn)  # before the render: the class's camera
        image = yield from self._step(f"🖼️ Render {query.kind.replace('_', ' ')}",
                                      lambda: pipeline.render_view(settings, query, class_name, artifacts[1:]))
        if query.kind != "image":
            yield Event("notice", title="view", images=[image])
        turn.class_name = self.ctx.class_name = pipeline.choose_class(kb, turn, class_name, image)
        if pipeline.suggestion_notice(turn):
            yield Event("notice", title="class", text=pipeline.suggestion_notice(turn))
        refs = yield from self._step("📚 Retrieve rules and references",
                                     lambda: pipeline.retrieve_knowledge(kb, settings, turn, image, artifacts[1:], k))
        turn.rules += pipeline.run_rules(extra_rules)
        use_expert = turn.strategy.uses("expert") or not self.backend.needs_network
        evidence = yield from self._step(f"🔬 {expert_name(query.kind)}", lambda: pipeline.gather_evidence(
            kb, settings, turn, query, image, refs, use_expert))
        if evidence.composite is not None:
            yield Event("notice", title="evidence", images=[evidence.composite])
        images = pipeline.prompt_images(self.images, turn, query, image, refs, evidence)
        verdict = yield from self._ask_for_verdict(turn, images)
        self.verdicts.append(verdict)
        self.last_turn, turn.verdict = turn, verdict
        self.ctx.evidence, self.ctx.rules = evidence, list(turn.rules)
        yield Event("verdict", text=verdict.reasoning, verdict=verdict)

    def _remember(self, artifacts: list[Artifact]) -> list[Artifact]:
        self.artifacts.update((a.id, a) for a in artifacts)
        return artifacts

    def _step(self, title: str, work):
        step = new_step_id()
        yield Event("step", title=title, status="pending", step_id=step)
        started = time.perf_counter()
        try:
            result = work()
        except Exception as exc:
            yield Event("step", title=title, status="error", step_id=step, text=one_line(exc),
                        duration_s=time.perf_counter() - started)
            raise
        yield Event("step", title=title, status="done", step_id=step, duration_s=time.perf_counter() - started,
                    text=_describe(result))
        return result

    def _ask_for_verdict(self, turn: TurnContext, images) -> Iterator[Event]:
        request = agent.request_for(self.backend, analysis_messages(turn, images), turn,
                                    json_schema=prompts.VERDICT_SCHEMA, want_logprobs=True)
        reply, answer, error = yield from agent.ask_for_verdict(self.backend, request, self.ctx,
                                                                max_steps=self.settings.agent_max_steps)
        self.history = request.messages + [Message("assistant", [reply.text])]
        return build_verdict(turn, self.backend, reply, answer, error)

    # ---- follow-ups and chat ------------------------------------------------------------
    def _converse(self, text: str) -> Iterator[Event]:
        if not text.strip():
            raise InputError("the message is empty: write a question, or attach a file to inspect")
        request = agent.request_for(self.backend, self._chat_messages(), self._chat_turn(text))
        request.messages.append(chat_message(request.context))
        reply = yield from agent.run(self.backend, request, self.ctx, max_steps=self.settings.agent_max_steps,
                                     stream=True)
        self.history = request.messages + [Message("assistant", [reply.text])]
        yield Event("answer", text=reply.text)

    def _chat_messages(self) -> list[Message]:
        return trim_history(self.history) if self.history else [Message("system", [prompts.SYSTEM])]

    def _chat_turn(self, text: str) -> TurnContext:
        """A follow-up about the last analysis (its class, rules, evidence and verdict), or a chat."""
        last = self.last_turn
        if last is None:
            notes = [self.missing_analysis] if self.missing_analysis else []
            return TurnContext("chat", question=text, known_classes=self.kb.classes(), notes=notes)
        return TurnContext("followup", question=text, known_classes=self.kb.classes(), artifact_id=last.artifact_id,
                           modality=last.modality, class_name=last.class_name, verdict=self.verdicts[-1],
                           evidence=last.evidence, rules=last.rules)


def one_line(exc: Exception) -> str:
    """The first line of an error's message (its kind when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _describe(result) -> str:
    if isinstance(result, list):
        return f"{len(result)} item(s)"
    if hasattr(result, "size") and isinstance(result.size, tuple):
        return "{}×{} px".format(*result.size)
    return ""
