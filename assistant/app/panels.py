"""The Gradio parts of the history and the reference workflow: laid out and wired here, decided elsewhere.

ui.py builds the app and calls these (the only other module that imports Gradio): the buttons under
the chat's offer to store files as reference normals, the knowledge panel's upload, thumbnails and
removal of references, and the History tab (earlier conversations to reopen, the inspection log to
browse and export as CSV). Every decision is made in assistant/app (references.py, history.py,
inspection_log.py, conversation.py); the handlers only translate between components and those.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import gradio as gr

from assistant.app import inspection_log
from assistant.app import references as refs
from assistant.app.chat_view import shown_text
from tools.inputs.artifacts import accepted_extensions
from tools.vocabulary import display_class

PRIVATE = {"api_visibility": "private"}
QUIET = {"api_visibility": "private", "show_progress": "hidden"}
LOG_COLUMNS = ["time (UTC)", "user", "class", "file", "sha256", "verdict", "score", "backend"]
LOG_ROWS = 500


# -- layout -------------------------------------------------------------------------------------------
def reference_tools() -> SimpleNamespace:
    """In the knowledge panel: thumbnails (click one to remove it), several normals uploaded at once."""
    gallery = gr.Gallery(label="Reference normals (who stored them, when; click one to remove it)", columns=6,
                         fit_columns=False, height=250, object_fit="contain", interactive=False, allow_preview=False,
                         elem_id="reference-gallery")
    with gr.Row(visible=False) as remove_row:
        remove_question = gr.Markdown()
        remove = gr.Button("Yes, remove", variant="stop", scale=0, min_width=140)
        keep = gr.Button("Cancel", scale=0, min_width=100)
    with gr.Row(equal_height=True) as upload_row:
        uploads = gr.File(label="Normal samples to store (several at once)", file_count="multiple",
                          file_types=accepted_extensions(), type="filepath", height=110, scale=3,
                          elem_id="reference-upload")
        store = gr.Button("📌 Store them as reference normals of this class", variant="primary", scale=1)
    return SimpleNamespace(gallery=gallery, ids=gr.State([]), pending=gr.State(None), remove_row=remove_row,
                           remove_question=remove_question, remove=remove, keep=keep, upload_row=upload_row,
                           uploads=uploads, store=store)


def history_tab() -> SimpleNamespace:
    """Earlier conversations to reopen, and the inspection log with its CSV export."""
    with gr.Tab("History", id="history") as tab:
        gr.Markdown("**Your conversations**, newest first: pick one and open it in the chat.")
        conversations = gr.Dataframe(headers=["updated (UTC)", "conversation", "inspections"], interactive=False,
                                     wrap=True, column_widths=["18%", "70%", "12%"], elem_id="conversation-list")
        with gr.Row():
            chosen = gr.Markdown("No conversation picked.")
            reopen = gr.Button("💬 Open in the chat", scale=0, min_width=240)
        gr.Markdown("**Inspection log**: every verdict you got in the app (newest first).")
        log = gr.Dataframe(headers=LOG_COLUMNS, interactive=False, wrap=True, elem_id="inspection-log")
        with gr.Row():
            refresh = gr.Button("↻ Refresh", scale=0, min_width=160)
            export = gr.DownloadButton("⬇ Export the log as CSV", value=None, scale=0, min_width=320)
    return SimpleNamespace(tab=tab, conversations=conversations, ids=gr.State([]), picked=gr.State(None),
                           chosen=chosen, reopen=reopen, log=log, refresh=refresh, export=export)


# -- handlers -----------------------------------------------------------------------------------------
class PanelEvents:
    """What the panels' events do, with the person's rights looked up by ui.Handlers on every request."""

    def __init__(self, handlers):
        self.on = handlers  # ui.Handlers: kb(), user(request), conversation(conv, request)

    def answer_offer(self, class_name, conv, evt: gr.SelectData, request: gr.Request):
        """A button under the chat's offer to store files as reference normals."""
        conv = self.on.conversation(conv, request)
        return conv.answer_offer(str(evt.value)), conv, self.slider(class_name)

    def slider(self, class_name):
        """'Reference normals to use' follows what is stored for the class: all of them, up to the cap."""
        count = refs.to_use(self.on.kb(), class_name)
        if count is None:
            return gr.Slider(info=refs.to_use_note())
        return gr.Slider(value=count, info=refs.to_use_note(len(self.on.kb().references(class_name))))

    def gallery(self, class_name):
        pictures, ids = refs.gallery(self.on.kb(), class_name)
        return pictures, ids

    def pick_reference(self, ids, evt: gr.SelectData, request: gr.Request):
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        status, pending = refs.ask_remove(self.on.user(request), ids[index] if 0 <= index < len(ids) else None)
        return status, pending, gr.Row(visible=pending is not None)

    def remove_reference(self, pending, chat_class, request: gr.Request):
        status = refs.confirm_remove(self.on.kb(), self.on.user(request), pending)
        return status, None, gr.Row(visible=False), self.slider(chat_class)

    def store_uploads(self, class_name, files, chat_class, conv, request: gr.Request):
        conv = self.on.conversation(conv, request)
        names = [_upload_name(f) for f in files or []]
        status = refs.store_files(self.on.kb(), self.on.user(request), class_name, list(files or []), names,
                                  self.on.settings)
        return status, None, self.slider(chat_class), conv

    def show_history(self, conv, request: gr.Request):
        conv = self.on.conversation(conv, request)
        kept = conv.history.summaries()
        rows = [[s.updated, s.title, s.inspections] for s in kept]
        lines = list(reversed(inspection_log.entries(self.on.settings.home, user=conv.user.name)))
        export = _export_file(conv, lines)
        table = [[_when(x["time"]), x["user"], display_class(x["class_name"] or ""), x["file_name"], (x["sha256"] or "")[:12],
                  x["verdict"],
                  "" if x["score"] is None else f"{x['score']:.2f}", x["backend"]] for x in lines[:LOG_ROWS]]
        return rows, [s.id for s in kept], table, gr.DownloadButton(value=export), conv

    @staticmethod
    def pick_conversation(ids, table, evt: gr.SelectData):
        row = evt.index[0]
        if not 0 <= row < len(ids):
            return None, "No conversation picked."
        return ids[row], f"Picked: **{shown_text(str(table.iloc[row, 1]))}**"

    def reopen(self, picked, conv, request: gr.Request):
        conv = self.on.conversation(conv, request)
        if not picked or not conv.reopen(picked):
            return gr.skip(), conv, gr.Tabs()
        return conv.view.messages, conv, gr.Tabs(selected="inspect")

    def restore(self, request: gr.Request):
        """A new page: the person's current conversation, as they left it (empty when there is none)."""
        conv = self.on.conversation(None, request)
        conv.reopen()
        return conv.view.messages, conv

    def expert_controls(self, request: gr.Request):
        can_edit = self.on.user(request).can_edit_knowledge
        return gr.Row(visible=can_edit)


def _upload_name(path) -> str:
    from assistant.app.conversation import display_name

    return display_name(str(path))


def _when(stamp) -> str:
    return str(stamp or "")[:16].replace("T", " ")


def _export_file(conv, lines) -> str:
    """The person's log as CSV in this page's own folder (served to this page only by its random path)."""
    folder = conv.files_dir / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "inspection-log.csv"
    inspection_log.write_file(path, inspection_log.as_csv(list(reversed(lines))))
    return str(path)


# -- wiring -------------------------------------------------------------------------------------------
def wire(demo, on, chat, kb, history, conv, tabs, show) -> None:
    """Connect the panels' events (`show` refreshes the knowledge panel: (fn, inputs, outputs))."""
    events, tools = PanelEvents(on), kb.tools
    chat.chatbot.option_select(events.answer_offer, [chat.class_box, conv], [chat.chatbot, conv, chat.n_refs],
                               **PRIVATE).then(*show, **QUIET)
    chat.class_box.change(events.slider, [chat.class_box], [chat.n_refs], **QUIET)
    tools.gallery.select(events.pick_reference, [tools.ids], [kb.status, tools.pending, tools.remove_row], **PRIVATE)
    tools.remove.click(events.remove_reference, [tools.pending, chat.class_box],
                       [kb.status, tools.pending, tools.remove_row, chat.n_refs], **PRIVATE).then(*show, **QUIET)
    tools.keep.click(lambda: ("Nothing removed.", None, gr.Row(visible=False)), None,
                     [kb.status, tools.pending, tools.remove_row], **PRIVATE)
    tools.store.click(events.store_uploads, [kb.kb_class, tools.uploads, chat.class_box, conv],
                      [kb.status, tools.uploads, chat.n_refs, conv], api_name="store_references").then(*show, **QUIET)
    demo.load(events.restore, None, [chat.chatbot, conv], **PRIVATE)
    demo.load(events.expert_controls, None, [tools.upload_row], **PRIVATE)
    listing = [history.conversations, history.ids, history.log, history.export, conv]
    history.tab.select(events.show_history, [conv], listing, **QUIET)
    history.refresh.click(events.show_history, [conv], listing, api_name="history")
    history.conversations.select(events.pick_conversation, [history.ids, history.conversations],
                                 [history.picked, history.chosen], **PRIVATE)
    history.reopen.click(events.reopen, [history.picked, conv], [chat.chatbot, conv, tabs], **PRIVATE)
