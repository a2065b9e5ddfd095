"""A conversation: its files, encoded images, verdicts and history, and the turns that use them.

`Session.send(text, files)` is the one entry point of the UI and the CLI: with files it analyses
the first one (the others are references for this turn); without, it answers a follow-up about
the last analysis, or chats (teaching, questions about the knowledge base). It yields Events.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant import agent, prompts
from assistant.analysis import PromptImages, TurnContext, analysis_messages, chat_message, trim_history
from assistant.backends.base import Backend, EncodedImage, Message, ModelRequest, create_backend
from assistant.events import Event, new_step_id
from assistant.prompts import Strategy
from assistant.verdict import Verdict, VerdictParseError, choose_score, parse_answer
from tools.agent import knowledge_tools, render_tools  # noqa: F401 - importing them registers the built-in tools
from tools.agent.evidence import expert_name
from tools.agent.registry import REGISTRY
from tools.inputs.artifacts import Artifact, load

SUGGEST_MIN_SIMILARITY = 0.80
MAX_ENCODED_IMAGES = 64  # encoded prompt images a session keeps for reuse
RELATED_RULE_MIN_SIMILARITY = 0.45  # below this a rule of another class is noise, not guidance
GENERIC_CLASS = {"series": "time_series", "video": "video"}  # seed guidance used when no class is named
SCAN_REFERENCES = 4  # stored reference scans a point cloud is compared with, at least


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


@dataclass
class SessionRule:
    """A rule given for one run (`ask --rule`), not stored."""

    id: str
    text: str
    kind: str = "normality"
    class_name: str | None = None


class Session:
    def __init__(self, settings, kb, backend: Backend | None = None, *, author: str = "user",
                 can_edit_knowledge: bool = True, model: str | None = None, base_url: str | None = None):
        self.id = uuid.uuid4().hex[:12]
        self.settings = settings
        self.kb = kb
        self.backend = backend or create_backend(settings.backend, settings, model=model, base_url=base_url)
        self.ctx = ToolCtx({}, kb, author, can_edit_knowledge, cache_dir=settings.cache_dir)
        self.history: list[Message] = []
        self.verdicts: list[Verdict] = []
        self.last_turn: TurnContext | None = None
        self._encoded: dict[tuple, EncodedImage] = {}

    @property
    def artifacts(self) -> dict[str, Artifact]:
        return self.ctx.artifacts

    def send(self, text: str = "", files=(), *, class_name: str | None = None, strategy: str | None = None,
             references: int | None = None, names=None, extra_rules=()) -> Iterator[Event]:
        """One turn. Files are analysed (the first is the query); text alone is a follow-up or chat."""
        self.ctx.user_text = text or ""
        if files:
            extra = [SessionRule(f"run-{i}", t) for i, t in enumerate(extra_rules, 1)]
            return self._analyse(list(files), text, class_name, strategy, references, names, extra)
        return self._converse(text)

    # ---- analysis -------------------------------------------------------------------------
    def _analyse(self, files, question, class_name, strategy_text, k, names, extra_rules) -> Iterator[Event]:
        strategy = Strategy.parse(strategy_text or self.settings.strategy)
        k = self.settings.references if k is None else k
        artifacts = yield from self._step("📥 Load files", lambda: self._load_all(files, names))
        query = artifacts[0]
        turn = TurnContext("analysis", question=question, modality=query.kind, artifact_id=query.id, strategy=strategy,
                           known_classes=self.kb.classes())
        image = yield from self._step(f"🖼️ Render {query.kind.replace('_', ' ')}",
                                      lambda: self._view(query, class_name, artifacts[1:]))
        if query.kind != "image":
            yield Event("notice", title="view", images=[image])
        turn.class_name = yield from self._choose_class(class_name, image, turn)
        self.ctx.class_name = turn.class_name
        refs = yield from self._step("📚 Retrieve rules and references", lambda: self._knowledge(turn, image, artifacts[1:], k))
        turn.rules += extra_rules
        use_expert = strategy.uses("expert") or not self.backend.needs_network
        evidence = yield from self._step(f"🔬 {expert_name(query.kind)}", lambda: self._evidence(query, image, refs, turn, use_expert))
        turn.evidence = evidence
        turn.notes += evidence.notes
        if evidence.composite is not None:
            yield Event("notice", title="evidence", images=[evidence.composite])
        images = self._prompt_images(query, image, refs, evidence)
        verdict = yield from self._ask_for_verdict(turn, images)
        self.verdicts.append(verdict)
        self.last_turn = turn
        turn.verdict = verdict
        yield Event("verdict", text=verdict.reasoning, verdict=verdict)

    def _step(self, title: str, work):
        step = new_step_id()
        yield Event("step", title=title, status="pending", step_id=step)
        started = time.perf_counter()
        try:
            result = work()
        except Exception as exc:
            yield Event("step", title=title, status="error", step_id=step, text=str(exc).splitlines()[0] if str(exc) else "",
                        duration_s=time.perf_counter() - started)
            raise
        yield Event("step", title=title, status="done", step_id=step, duration_s=time.perf_counter() - started,
                    text=_describe(result))
        return result

    def _load_all(self, files, names) -> list[Artifact]:
        names = list(names or [None] * len(files))
        loaded = []
        for path, name in zip(files, names + [None] * (len(files) - len(names)), strict=False):
            artifact = load(Path(path), name=name)
            self.artifacts[artifact.id] = artifact
            loaded.append(artifact)
        return loaded

    def _view(self, artifact: Artifact, class_name: str | None, references=()):
        from tools.render.views import fix_class_camera, to_image

        fix_class_camera(class_name, self.settings.cache_dir, list(references))  # references fix it, never the query
        return to_image(artifact, class_name=class_name, cache_dir=self.settings.cache_dir)

    def _choose_class(self, class_name, image, turn: TurnContext):
        if class_name:
            return class_name.strip()
        if turn.modality != "image":
            return GENERIC_CLASS.get(turn.modality)
        suggestions = self.kb.suggest_classes(image, k=3)
        turn.suggested_classes = suggestions
        if suggestions:
            listed = ", ".join(f"{name} ({sim:.2f})" for name, sim in suggestions)
            yield Event("notice", title="class", text=f"No class given; most similar known classes: {listed}.")
        if suggestions and suggestions[0][1] >= SUGGEST_MIN_SIMILARITY:
            return suggestions[0][0]
        turn.notes.append("The class is unknown; judged without class-specific rules.")
        return None

    def _knowledge(self, turn: TurnContext, image, extra_refs, k):
        from tools.agent.evidence import stored_references, turn_references

        cache = self.settings.cache_dir
        refs = turn_references(extra_refs, turn.class_name, cache)
        if turn.modality == "point_cloud":
            k = max(k, SCAN_REFERENCES)  # the 3-D expert calibrates on its references: one is too few
        if turn.class_name:
            turn.rules = self.kb.rules(turn.class_name)
            refs += stored_references(self.kb, turn.class_name, image, max(0, k - len(refs)), cache)
            if not turn.rules:
                turn.rules = self._related_rules(turn.question or turn.class_name.replace("_", " "))
                if turn.rules:
                    turn.notes.append(f"No rules stored for {turn.class_name}; used the closest rules by meaning.")
        elif turn.question:
            turn.rules = self._related_rules(turn.question)
        if not refs and turn.strategy.uses("reference"):
            turn.notes.append("No reference normal is stored for this class; analysed without one "
                              "(add one with `anomaly-chat kb add-ref` or the knowledge panel).")
        return refs

    def _related_rules(self, text: str) -> list:
        return [r for r, sim in self.kb.search_rules(text, k=3) if sim >= RELATED_RULE_MIN_SIMILARITY]

    def _evidence(self, query, image, refs, turn, use_expert):
        from tools.agent.evidence import gather

        settings = self.kb.class_settings(turn.class_name) if turn.class_name else {}
        return gather(query, image, refs, class_settings=settings, cache_dir=self.settings.cache_dir, use_expert=use_expert,
                      class_name=turn.class_name)

    def _encode(self, key, image, label) -> EncodedImage:
        cached = self._encoded.get((key, label))
        if cached is None:
            cached = self._encoded[(key, label)] = EncodedImage.from_pil(image, label, self.settings.image_long_side)
            while len(self._encoded) > MAX_ENCODED_IMAGES:
                self._encoded.pop(next(iter(self._encoded)))  # oldest first: dicts keep insertion order
        return cached

    def _prompt_images(self, query, image, refs, evidence) -> PromptImages:
        # keyed by content and class (the class fixes the render camera), so a follow-up reuses the encoding
        cls = self.ctx.class_name
        encoded_refs = [self._encode((r.key, cls), r.image, f"reference {i}") for i, r in enumerate(refs, 1)]
        expert = EncodedImage.from_pil(evidence.composite, "expert", self.settings.image_long_side) if evidence.composite else None
        return PromptImages(self._encode((query.sha256, cls), image, "query"), encoded_refs, expert)

    def _ask_for_verdict(self, turn: TurnContext, images: PromptImages):
        messages = analysis_messages(turn, images)
        request = self._request(messages, turn, json_schema=prompts.VERDICT_SCHEMA, want_logprobs=True)
        reply = yield from agent.run(self.backend, request, self.ctx, max_steps=self.settings.agent_max_steps)
        answer, error = _read_answer(reply.text)
        if error is not None:  # one repair retry that quotes the parse error
            request.messages += [Message("assistant", [reply.text]), Message("user", [prompts.REPAIR.format(error=error)])]
            first_usage = reply.usage
            reply = yield from agent.run(self.backend, request, self.ctx, max_steps=2)
            reply.usage = {k: first_usage.get(k, 0) + reply.usage.get(k, 0) for k in {*first_usage, *reply.usage}}
            answer, error = _read_answer(reply.text)
        self.history = request.messages + [Message("assistant", [reply.text])]
        return self._unparsed(turn, reply, error) if error is not None else self._verdict(turn, answer, reply)

    def _request(self, messages, turn, **kwargs) -> ModelRequest:
        tools = [t.spec() for t in REGISTRY.values()] if self.backend.supports_tools else []
        return ModelRequest(messages=messages, tools=tools, context=turn, **kwargs)

    def _common(self, turn: TurnContext) -> dict:
        return {"class_name": turn.class_name, "strategy": turn.strategy.name, "backend": self.backend.name,
                "model": self.backend.model, "prompt_version": prompts.PROMPT_VERSION, "notes": list(turn.notes),
                "regions": [r.to_dict() for r in getattr(turn.evidence.expert, "regions", [])] if turn.evidence else []}

    def _verdict(self, turn, answer, reply) -> Verdict:
        evidence_score = turn.evidence.score if turn.evidence is not None else None
        score, source = choose_score(answer, reply.logprobs, evidence_score)
        location = answer.location
        common = self._common(turn)
        regions = common["regions"]
        if not location.get("box") and answer.anomalous and regions:
            location = {"box": list(regions[0]["box"]), "where": location.get("where") or regions[0]["where"]}
        return Verdict(anomalous=answer.anomalous, score=score, score_source=source, reasoning=answer.reasoning,
                       defect_type=answer.defect_type, location=location, rules_used=answer.rules_used,
                       usage=dict(reply.usage), **common)

    def _unparsed(self, turn, reply, error) -> Verdict:
        return Verdict(anomalous=None, score=None, score_source="none", reasoning=reply.text[:4000], parsed=False,
                       parse_error=str(error), usage=dict(reply.usage), **self._common(turn))

    # ---- follow-ups and chat ------------------------------------------------------------
    def _converse(self, text: str) -> Iterator[Event]:
        from tools.errors import InputError

        if not text.strip():
            raise InputError("the message is empty: write a question, or attach a file to inspect")
        mode = "followup" if self.last_turn else "chat"
        turn = TurnContext(mode, question=text, known_classes=self.kb.classes(),
                           artifact_id=self.last_turn.artifact_id if self.last_turn else None,
                           modality=self.last_turn.modality if self.last_turn else None,
                           class_name=self.last_turn.class_name if self.last_turn else None,
                           verdict=self.verdicts[-1] if self.verdicts else None,
                           evidence=self.last_turn.evidence if self.last_turn else None,
                           rules=self.last_turn.rules if self.last_turn else [])
        messages = trim_history(self.history) if self.history else [Message("system", [prompts.SYSTEM])]
        request = self._request(messages + [chat_message(turn)], turn)
        reply = yield from agent.run(self.backend, request, self.ctx, max_steps=self.settings.agent_max_steps, stream=True)
        self.history = request.messages + [Message("assistant", [reply.text])]
        yield Event("answer", text=reply.text)


def _read_answer(text: str):
    """(answer, None) when the reply holds a readable verdict, else (None, the parse error)."""
    try:
        return parse_answer(text), None
    except VerdictParseError as error:
        return None, error


def _describe(result) -> str:
    if isinstance(result, list):
        return f"{len(result)} item(s)"
    if hasattr(result, "size") and isinstance(result.size, tuple):
        return "{}×{} px".format(*result.size)
    return ""
