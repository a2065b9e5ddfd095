"""How a turn looks in the chat: collapsible steps, streamed text, pictures, the verdict badge, errors.

`ChatView` keeps the chat's messages as Gradio message dicts (role, content, metadata) and updates
them event by event, so the UI only has to show `view.messages` after each event. Pictures (the
rendered view, the reference | query | heatmap composite) are written as PNG files into the
conversation's own folder, which lies in the app's temp area. Text from people, models, tools and files
reaches the chat only through `shown_text`: HTML escaped, Markdown images and links shown as text.
Nothing here imports Gradio.
"""

from __future__ import annotations

import html
import re
import uuid
from pathlib import Path

from tools.agent.fence import for_people
from tools.vocabulary import display_class

BADGES = {  # label -> (text on the badge, css modifier, symbol)
    "normal": ("NORMAL", "normal", "✅"),
    "anomalous": ("ANOMALOUS", "anomalous", "⛔"),
    "undecided": ("UNDECIDED", "undecided", "❔"),
    "unparsed": ("UNDECIDED", "undecided", "❔"),
}
SCORE_SOURCES = {"logprobs": "the model's token probabilities", "confidence": "the model's confidence",
                 "expert": "the expert (vision, 3-D or series)", "verdict": "the verdict alone (no continuous score)",
                 "none": "no score"}
IMAGE_CAPTIONS = {"evidence": "reference | query | heatmap of where it differs (red = far from normal; "
                              "a legend names any other colours)", "view": "rendered view"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif"}
_MARKDOWN_LINK_CHARACTERS = re.compile(r"[\\\[\]@]")  # what Markdown builds links and images from
_AUTOLINK = re.compile(r"://|\bwww\.", re.I)  # what GFM turns into a link without brackets


def shown_text(text: str) -> str:
    """Text from a person, a model, a tool or a file as it goes into the chat: shown, never run or followed.

    The chat renders Markdown, so escaping HTML is not enough: `![](http://host/?d=...)` would make the
    browser fetch a URL and `[here](http://host)` would be a link. Backslashes, brackets and `@` are
    escaped and `://` and `www.` broken with Markdown escapes, so images, links (inline, reference,
    bare and e-mail autolinks) read as the text they are. Inside a code span the escapes show.
    """
    escaped = _MARKDOWN_LINK_CHARACTERS.sub(r"\\\g<0>", html.escape(str(text), quote=False))
    return _AUTOLINK.sub(lambda m: ":\\/\\/" if m.group() == "://" else m.group()[:3] + "\\.", escaped)


def as_read(shown: str) -> str:
    """What a person reads of a text `shown_text` made (entities and Markdown escapes resolved), for
    comparing chat text, e.g. in tests and the soak benchmark."""
    return re.sub(r"\\(.)", r"\1", html.unescape(shown))


def one_line(text: str, limit: int = 300) -> str:
    """The first line of a message, shortened: what the chat shows for an error."""
    first = (str(text).strip().splitlines() or [""])[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


def save_image(image, folder: Path) -> str:
    """Write a PIL image as PNG into the conversation's folder; the path for the chat."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex[:12]}.png"
    image.save(path, compress_level=1)  # written once and shown once: speed over a ~30 % smaller file
    return str(path)


def user_message(text: str, files: list[str], names: list[str]) -> dict:
    """The person's bubble: their text and their files (pictures inline, others as links)."""
    content: list = [{"path": path, "alt_text": name} for path, name in zip(files, names, strict=True)]
    if text.strip():
        content.append(shown_text(text))
    return {"role": "user", "content": content or [""]}


def badge_html(verdict) -> str:
    """NORMAL / ANOMALOUS / UNDECIDED with the score, as a small coloured badge."""
    word, css, symbol = BADGES.get(verdict.label, BADGES["undecided"])
    score = "" if verdict.score is None else f" · score {verdict.score:.2f}"
    return f'<span class="verdict-badge verdict-{css}">{symbol} {word}{score}</span>'


def location_text(location: dict) -> str:
    """Where the anomaly is, in words and as a box in image fractions."""
    where = (location or {}).get("where") or ""
    box = (location or {}).get("box")
    if box and min(box[2] - box[0], box[3] - box[1]) >= 0.005:  # a sliver (a place behind the view's edge) says nothing
        span = f"x {box[0]:.2f}–{box[2]:.2f}, y {box[1]:.2f}–{box[3]:.2f} of the image"
        where = f"{where} ({span})" if where else span
    return where


def verdict_markdown(verdict) -> str:
    """The verdict message: badge, location, reasoning, rules, and what produced it."""
    return verdict_header(verdict) + "\n\n" + verdict_body(verdict)


def verdict_header(verdict) -> str:
    """The verdict's first line: the badge and where."""
    parts = [badge_html(verdict)]
    where = location_text(verdict.location)
    if where and verdict.anomalous:
        parts.append(f"**Where:** {shown_text(where)}")
    return " &nbsp; ".join(parts)


def verdict_body(verdict, pictured: bool = False) -> str:
    """The verdict's reasoning and notes, then in small type the rules used and what produced it (and, under
    the evidence picture, how to read it). Every text from a model or the knowledge base goes through shown_text."""
    defect = verdict.defect_type if verdict.anomalous and verdict.defect_type not in ("", "none") else ""
    why = f"**Why** ({shown_text(defect)}):" if defect else "**Why:**"
    lines = [f"{why} {shown_text(for_people(verdict.reasoning or 'no reasoning given'))}"]
    if not verdict.parsed:
        lines.append(f"*The model's reply could not be read as a verdict ({shown_text(verdict.parse_error or '')}).*")
    lines += [f"*Note: {shown_text(n)}*" for n in verdict.notes]
    model = "/".join(p for p in (verdict.backend, verdict.model) if p)
    shown_class = display_class(verdict.class_name) if verdict.class_name else "unknown"
    rules = f"rules used: {shown_text(', '.join(verdict.rules_used))} · " if verdict.rules_used else ""
    legend = f"picture: {IMAGE_CAPTIONS['evidence']} · " if pictured else ""
    source = SCORE_SOURCES.get(verdict.score_source, verdict.score_source)
    lines.append(f"<small>{legend}{rules}class {shown_text(shown_class)} · strategy {shown_text(verdict.strategy or '?')}"
                 f" · {shown_text(model)} · score from {shown_text(source)}</small>")
    return "\n\n".join(lines)


class ChatView:
    """The chat's messages, updated by the events of a turn."""

    def __init__(self, files_dir: Path):
        self.files_dir = Path(files_dir)
        self.messages: list[dict] = []
        self._steps: dict[str, dict] = {}
        self._streaming: dict | None = None
        self._streamed = ""  # the raw text streamed so far: neutralised whole, as a link may span two pieces
        self._evidence: dict | None = None  # this turn's evidence picture, which the verdict takes in

    def restore(self, messages: list[dict]) -> None:
        """Show messages kept from an earlier session of this conversation (the history)."""
        self.messages = list(messages)
        self._steps, self._streaming, self._evidence, self._streamed = {}, None, None, ""

    def add_user(self, text: str, files: list[str], names: list[str]) -> None:
        self.messages.append(user_message(text, files, names))
        self._streaming = self._evidence = None

    def say(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})

    def ask(self, text: str, choices: dict[str, str]) -> None:
        """A question with buttons under it ({value: label}); the chat shows them while it is the last message."""
        self.messages.append({"role": "assistant", "content": text,
                              "options": [{"value": value, "label": label} for value, label in choices.items()]})

    def settle(self) -> None:
        """The question's buttons are answered: take them away."""
        for message in self.messages:
            message.pop("options", None)

    def add_error(self, message: str) -> None:
        """A readable one-line error; any step still running is marked as stopped."""
        for step in self._steps.values():
            if step["metadata"].get("status") == "pending":
                step["metadata"].update(status="done", title=step["metadata"]["title"] + " — stopped")
        self._steps.clear()
        self.say(f"⚠️ {shown_text(one_line(message))}")

    def apply(self, event) -> None:
        """Show one assistant.events.Event."""
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_step(self, event) -> None:
        message = self._steps.get(event.step_id)
        if message is None:
            message = {"role": "assistant", "content": "", "metadata": {"title": shown_text(event.title),
                                                                         "id": event.step_id}}
            self._steps[event.step_id] = message
            self.messages.append(message)
        meta = message["metadata"]
        meta["status"] = "pending" if event.status == "pending" else "done"
        if event.status == "error":
            meta["title"] = f"{shown_text(event.title)} — failed"
        if event.status != "pending":
            meta["duration"] = round(event.duration_s, 2)
            self._steps.pop(event.step_id, None)
        text = shown_text(event.text) if event.text else ("running…" if event.status == "pending" else "done")
        pictures = [{"path": save_image(img, self.files_dir)} for img in event.images]
        message["content"] = [text, *pictures] if pictures else text

    def _on_text(self, event) -> None:
        if self._streaming is None:
            self._streaming, self._streamed = {"role": "assistant", "content": ""}, ""
            self.messages.append(self._streaming)
        self._streamed += event.text
        self._streaming["content"] = shown_text(self._streamed)

    def _on_answer(self, event) -> None:
        text = shown_text(for_people(event.text))  # a model may echo a tool result's data tags
        if self._streaming is not None:
            self._streaming["content"] = text
            self._streaming = None
        else:
            self.say(text)

    def _on_notice(self, event) -> None:
        if event.text:
            self.say(f"ℹ️ {shown_text(event.text)}")
        if event.images:
            caption = IMAGE_CAPTIONS.get(event.title, event.title)
            pictures = [{"path": save_image(img, self.files_dir), "alt_text": caption} for img in event.images]
            self.messages.append({"role": "assistant", "content": [f"*{caption}*", *pictures]})
            if event.title == "evidence":
                self._evidence = self.messages[-1]

    def _on_verdict(self, event) -> None:
        """The verdict, with this turn's evidence picture inside it: badge, picture and reasons are read together."""
        picture, self._evidence = self._evidence, None
        if picture is None:
            self.say(verdict_markdown(event.verdict))
            return
        _, *images = picture["content"]  # the caption's words move into the verdict's small print
        picture["content"] = [verdict_header(event.verdict), *images, verdict_body(event.verdict, pictured=True)]
        self.messages.remove(picture)
        self.messages.append(picture)

    def _on_error(self, event) -> None:
        self.add_error(event.text)


def normalise_history(history) -> list[dict]:
    """One shape for any chat history: [{"role", "text", "files", "title"}].

    The browser hands a Chatbot's value over as content parts ({"type": "text"|"file", ...} with a
    FileData dict), gradio_client returns the same parts with the downloaded file's path as a string,
    and handlers use plain message dicts or gr.ChatMessage objects with a string, a file dict or a
    list of those as content. Components inside messages are skipped.
    """
    out = []
    for message in history or []:
        get = message.get if isinstance(message, dict) else lambda key, m=message: getattr(m, key, None)
        content = get("content")
        parts = content if isinstance(content, list) else [content]
        texts, files = [], []
        for part in parts:
            _collect(part, texts, files)
        out.append({"role": get("role") or "assistant", "text": "\n".join(t for t in texts if t), "files": files,
                    "title": (get("metadata") or {}).get("title", "")})
    return out


def _collect(part, texts: list, files: list) -> None:
    if isinstance(part, str):
        texts.append(part)
    elif isinstance(part, dict) and part.get("type") == "text":
        texts.append(part.get("text", ""))
    elif isinstance(part, dict) and isinstance(part.get("file"), dict):  # the browser: a FileData dict
        files.append(part["file"].get("path") or part["file"].get("url") or "")
    elif isinstance(part, dict) and isinstance(part.get("file"), str):  # gradio_client: the downloaded file
        files.append(part["file"])
    elif isinstance(part, dict) and "path" in part:
        files.append(part["path"])
