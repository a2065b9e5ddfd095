"""Reference normals as a workflow in the app: offered in the chat and stored on a button, uploaded several
at once in the knowledge panel, shown as thumbnails with author and date, removed after a confirmation,
and used all (nearest first, up to MAX_REFERENCES) unless the person lowers the number.

The wording of a message only decides what is offered (tools/agent/consent.py `offers_references`);
the person's button press stores. Every change checks the role here, on the server, and comes back
as a status line instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from assistant.app.access import User, require_expert
from assistant.app.chat_view import IMAGE_SUFFIXES, one_line, shown_text
from assistant.app.knowledge_panel import ask_to_confirm, need
from tools.agent.consent import class_named_in, find_lesson, offers_references
from tools.errors import InputError
from tools.vocabulary import display_class

MAX_REFERENCES = 8  # the most an analysis compares with: the expert's time grows with each reference
THUMBNAILS = 48
STORE, CANCEL = "store-references", "cancel-references"
OFFER_CHOICES = {STORE: "📌 Confirm: store them", CANCEL: "Cancel"}  # the buttons under an offer in the chat


@dataclass
class Inspected:
    """The conversation's last inspection: what a "store this as a reference" without files refers to."""

    artifact: object  # tools.inputs.artifacts.Artifact
    class_name: str | None
    verdict: object = None


@dataclass
class Offer:
    """Files the person may store as reference normals of a class, waiting for their button press."""

    files: list[str]  # paths of uploads the app already holds (never a path a client names)
    names: list[str]  # the names the person gave them (display only)
    class_name: str | None  # None: the person must name the class first
    warning: str = ""  # e.g. the file was judged anomalous
    stored: list = field(default_factory=list)

    def question(self) -> str:
        """What the confirmation row asks."""
        if not self.class_name:
            return (f"Store {len(self.files)} file(s) as reference normals? Name the class first: type it in the "
                    "Class box and send the message again.")
        return (f"Store {len(self.files)} file(s) as reference normals of **{shown_text(display_class(self.class_name))}**?"
                f"{' ' + self.warning if self.warning else ''}")


def offer_from_message(text: str, files: list[str], names: list[str], *, class_box: str | None,
                       known_classes: list[str], last: Inspected | None = None) -> Offer | None:
    """The offer a message makes: its files (or, without files, the last inspected one) as normals, or None."""
    if find_lesson(text or "", known_classes) is not None or not offers_references(text, with_files=bool(files)):
        return None
    name = class_named_in(text, known_classes) or (class_box or "").strip() or (last.class_name if last else None)
    if files:
        return Offer(list(files), list(names), name)
    if last is None or last.artifact is None:
        return None
    warning = ""
    if last.verdict is not None and last.verdict.anomalous:
        warning = f"It was judged ANOMALOUS (score {last.verdict.score:.2f}); store it only if it is a good part."
    return Offer([str(last.artifact.path)], [last.artifact.name], name, warning)


def store_offer(kb, user: User, offer: Offer | None, settings) -> str:
    """Store what was offered (experts only); a status line saying what was stored and what was not."""
    if offer is None:
        return "⚠️ nothing to store: attach files and say they are normal first"
    if not offer.class_name:
        return "⚠️ no class given: type the class in the Class box and send the message again"
    return store_files(kb, user, offer.class_name, offer.files, offer.names, settings)


def store_files(kb, user: User, class_name: str, files: list[str], names: list[str], settings) -> str:
    """Store files as reference normals of a class: each is read and checked like an inspected file."""
    try:
        require_expert(user)
        name = need(class_name, "the class")
        if not files:
            raise InputError("no files chosen: upload the normal samples first")
    except InputError as exc:
        return f"⚠️ {shown_text(one_line(str(exc)))}"
    from tools.inputs.artifacts import load
    from tools.render.views import fix_class_camera

    loaded, refused = [], []
    for path, shown in zip(files, list(names) + [None] * len(files), strict=False):
        try:
            loaded.append(load(Path(path), name=shown))
        except InputError as exc:
            refused.append(f"{shown or Path(path).name}: {one_line(str(exc))}")
    fix_class_camera(name, settings.cache_dir, loaded)  # reference scans stored together fix the camera together
    stored = []
    for artifact in loaded:
        try:
            stored.append(_store_one(kb, user, name, artifact, settings))
        except InputError as exc:
            refused.append(f"{artifact.name}: {one_line(str(exc))}")
    return _stored_status(kb, name, stored, refused)


def _store_one(kb, user: User, class_name: str, artifact, settings):
    view = None
    if artifact.kind != "image":
        from tools.render.views import to_image

        view = to_image(artifact, class_name=class_name, cache_dir=settings.cache_dir)
    return kb.add_reference(class_name, artifact.path, modality=artifact.kind, view_image=view,
                            note=f"added in the app from {artifact.name}", author=user.name)


def _stored_status(kb, class_name: str, stored: list, refused: list[str]) -> str:
    shown = shown_text(display_class(class_name))
    lines = []
    if stored:
        total = len(kb.references(class_name))
        lines.append(f"✅ Stored {len(stored)} reference normal(s) of {shown}; {total} stored in all. Later inspections "
                     f"of {shown} compare with the {min(total, MAX_REFERENCES)} nearest.")
    lines += [f"⚠️ not stored: {shown_text(line)}" for line in refused]
    return "\n\n".join(lines) or "Nothing stored."


def to_use(kb, class_name: str | None) -> int | None:
    """How many references an analysis of the class uses by default: all stored, up to MAX_REFERENCES."""
    if not class_name:
        return None
    return min(len(kb.references(class_name)), MAX_REFERENCES)


def to_use_note(stored: int | None = None) -> str:
    """What the 'Reference normals to use' control says under itself."""
    if stored is None:
        return f"all stored references of the class, nearest first, up to {MAX_REFERENCES}"
    return f"{stored} stored; all are used, nearest first, up to {MAX_REFERENCES}, unless you lower this"


def gallery(kb, class_name: str | None) -> tuple[list[tuple], list[str]]:
    """(thumbnail, 'author · date') for the newest references, and their ids in the same order.

    Thumbnails, not paths: the knowledge base's folder is never served to the browser.
    """
    if not class_name:
        return [], []
    pictures, ids = [], []
    for sample in reversed(kb.references(class_name)[-THUMBNAILS:]):
        thumb = _thumbnail(sample)
        if thumb is not None:
            pictures.append((thumb, f"{sample.author} · {sample.created_at[:16].replace('T', ' ')}"))
            ids.append(sample.id)
    return pictures, ids


def _thumbnail(sample) -> Image.Image | None:
    path = Path(sample.path)
    try:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            with Image.open(path) as image:
                thumb = image.convert("RGB")
        else:  # a point cloud, series or video: its view, rendered like the queries it is compared with
            from tools.inputs.artifacts import load
            from tools.render.views import to_image

            thumb = to_image(load(path), class_name=sample.class_name)
    except (OSError, InputError, ValueError):
        return None
    thumb.thumbnail((256, 256))
    return thumb


def ask_remove(user: User, ref_id: str | None) -> tuple[str, str | None]:
    """First step of removing a reference: (the question, the id waiting for the confirmation)."""
    return ask_to_confirm(user, ref_id, "the reference", "Remove reference `{}` for good? Press **Yes, remove**")


def confirm_remove(kb, user: User, pending: str | None) -> str:
    """Second step: remove the reference that was asked about, and only that one."""
    try:
        require_expert(user)
        if not pending:
            raise InputError("nothing to remove: pick a reference picture first")
        sample = kb.get_reference(pending)
        kb.delete_reference(pending)
    except InputError as exc:
        return f"⚠️ {shown_text(one_line(str(exc)))}"
    left = len(kb.references(sample.class_name))
    return f"🗑️ Removed reference `{pending}` of {shown_text(display_class(sample.class_name))}; {left} left."
