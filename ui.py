"""The Gradio chat app: layout and wiring only; every decision is made in assistant/.

`build_app(settings)` builds the Blocks without launching (tests), `launch(demo, settings, ...)`
starts it with the theme, sign-in and allowed paths, `main(settings, host, port)` does both and
blocks, and `python ui.py [--host H] [--port P]` runs it from a checkout.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from assistant import warmup
from assistant.app import demo_data, panels
from assistant.app import knowledge_panel as panel
from assistant.app import references as refs
from assistant.app.access import Access
from assistant.app.chat_view import one_line, shown_text
from assistant.app.conversation import PROMPT_SWITCHES, Conversation, switches_for
from assistant.app.history import LiveSessions
from assistant.backends.registry import AUTO, BACKENDS, configured_base_url, keys_status
from assistant.backends.urls import shown_url
from assistant.commands.common import open_kb
from tools.errors import InputError
from tools.inputs.artifacts import accepted_extensions
from tools.vocabulary import RULE_KINDS, display_class

log = logging.getLogger(__name__)
FILE_TYPES = accepted_extensions()  # what the loaders read, from their format table
CSS = """
.verdict-badge {display:inline-block; padding:3px 12px; border-radius:999px; font-weight:700;
  letter-spacing:.04em; font-size:.95em; border:1px solid transparent}
.verdict-normal {background:#dcfce7; color:#14532d; border-color:#4ade80}
.verdict-anomalous {background:#fee2e2; color:#7f1d1d; border-color:#f87171}
.verdict-undecided {background:#fef3c7; color:#78350f; border-color:#fbbf24}
#app-header h1 {display:inline; margin:0 .6em 0 0; font-size:1.35em} #app-header p {display:inline; opacity:.8}
#conversation .prose {font-size:14.5px; line-height:1.42}
#conversation img {max-height:min(235px, 31vh); width:auto; object-fit:contain}
#reference-gallery .caption-label {max-width:96%; white-space:normal; font-size:12px}
#conversation .message:has(.verdict-badge) img, #conversation .message:has(.verdict-badge) + .message img
  {max-height:min(170px, 22vh)}
"""
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
PLACEHOLDER = ("**Attach a picture, point cloud, series or video of a part and ask if anything is wrong.**"
               "<br>Several files: the first is inspected, the others are normal references for this turn.")
# A conversation (its Session, files and pictures) untouched this long is dropped; without a limit, API clients
# and tabs left open would keep theirs for the life of the process.
CONVERSATION_IDLE_S = 8 * 3600
PRIVATE = {"api_visibility": "private"}
QUIET = {"api_visibility": "private", "show_progress": "hidden"}


def _theme():
    """The look: Soft, indigo, system fonts (so the page needs nothing from the internet)."""
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="slate", font=SYSTEM_FONTS,
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])


def _temp_root(settings) -> Path:
    """The app's temp area (uploads and rendered pictures): $GRADIO_TEMP_DIR, else under the data dir."""
    os.environ.setdefault("GRADIO_TEMP_DIR", str(settings.home / "tmp"))
    return Path(os.environ["GRADIO_TEMP_DIR"])


def _header(user) -> str:
    if user.single_user:
        who = "Single-user mode: no sign-in, so whoever opens this page may change the knowledge base."
    else:
        who = f"Signed in as **{user.name}** ({user.role}) · [sign out](/logout)"
    return f"# 🔍 anomaly-chat\nInspect parts in a chat, ask why, teach rules. {who}"


def _keys_status(settings) -> str:
    """Which backends' keys are configured (from the environment or config file), never their values."""
    states = [f"{BACKENDS[name].label or name} key: {'set ✓' if is_set else 'not set'}"
              for name, is_set in keys_status(settings).items()]
    keyless = ", ".join(name for name, cls in BACKENDS.items() if cls.key_setting is None)
    return (f"API keys come only from the environment or the config file. {' · '.join(states)}. "
            f"The {keyless} backend needs none.")


# -- layout ---------------------------------------------------------------------------------------
def _inspect_tab(settings, demo_files) -> SimpleNamespace:
    with gr.Tab("Inspect", id="inspect"), gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Conversation", show_label=False, height="calc(100vh - 242px)", min_height=420,
                                 placeholder=PLACEHOLDER, feedback_options=None, buttons=["copy"], elem_id="conversation")
            box = gr.MultimodalTextbox(file_types=FILE_TYPES, file_count="multiple", show_label=False,
                                       placeholder="Ask, e.g. “Is anything wrong here?” — attach files with the clip")
        with gr.Column(scale=1, min_width=300):
            class_box = gr.Dropdown(label="Class", choices=[], value=None, allow_custom_value=True,
                                    info="Pick or type one (a new name makes a new class). Empty: suggested "
                                         "from the image.")
            with gr.Accordion("Prompt parts (as in the paper)", open=False):
                switches = gr.CheckboxGroup(list(PROMPT_SWITCHES), value=switches_for(settings.strategy),
                                            show_label=False, info="Switch parts off to see how each changes the answer.")
            n_refs = gr.Slider(0, refs.MAX_REFERENCES, value=refs.MAX_REFERENCES, step=1, label="Reference normals to use",
                               info=refs.to_use_note())
            new_chat = gr.Button("🧹 New conversation", variant="secondary")
            gr.Examples(demo_data.examples(demo_files), inputs=[box, class_box], label="Try the demo part",
                        example_labels=demo_data.EXAMPLE_LABELS)
    return SimpleNamespace(chatbot=chatbot, box=box, class_box=class_box, switches=switches, n_refs=n_refs,
                           new_chat=new_chat)


def _knowledge_tab() -> SimpleNamespace:
    with gr.Tab("Knowledge", id="knowledge"):
        with gr.Row(equal_height=False):
            kb_class = gr.Dropdown(label="Class", choices=[], allow_custom_value=True, scale=4)
            refresh = gr.Button("↻ Refresh", scale=0, min_width=140)
        rules = gr.Dataframe(headers=panel.RULE_COLUMNS, label="Rules (click a row to edit it)", interactive=False,
                             wrap=True, column_widths=["15%", "9%", "44%", "10%", "14%", "8%"])
        with gr.Group() as editor:
            rule_id = gr.Textbox(label="Rule id", placeholder="click a rule above to edit it")
            rule_text = gr.Textbox(label="Rule text", lines=2)
            with gr.Row():
                rule_kind = gr.Radio(list(RULE_KINDS), value="normality", label="Kind")
                rule_active = gr.Checkbox(value=True, label="Active")
            with gr.Row():
                add = gr.Button("➕ Add as new rule", variant="primary")
                save = gr.Button("💾 Save changes")
                deactivate = gr.Button("⏸ Deactivate")
                delete = gr.Button("🗑 Delete…", variant="stop")
            with gr.Row(visible=False) as confirm_row:
                confirm = gr.Button("Yes, delete", variant="stop")
                cancel = gr.Button("Cancel")
        status = gr.Markdown()
        tools = panels.reference_tools()
        references = gr.Dataframe(headers=panel.REFERENCE_COLUMNS, label="Reference records", interactive=False)
        add_reference = gr.Button("📌 Add the current query as a normal reference of this class")
    return SimpleNamespace(kb_class=kb_class, refresh=refresh, rules=rules, editor=editor, rule_id=rule_id,
                           rule_text=rule_text, rule_kind=rule_kind, rule_active=rule_active, add=add, save=save,
                           deactivate=deactivate, delete=delete, confirm_row=confirm_row, confirm=confirm,
                           cancel=cancel, status=status, gallery=tools.gallery, references=references,
                           add_reference=add_reference, tools=tools)


def _settings_tab(settings) -> SimpleNamespace:
    with gr.Tab("Settings", id="settings"):
        # Any name is checked on the server when applied.
        backend = gr.Dropdown(list(dict.fromkeys([AUTO, *BACKENDS, settings.backend])), value=settings.backend,
                              label="Backend", allow_custom_value=True,
                              info="auto: a configured provider, else the built-in offline backend")
        model = gr.Textbox(value=settings.model or "", label="Model (empty: the backend's default)",
                           info="e.g. " + ", ".join(m for cls in BACKENDS.values() for m in cls.models[:2]))
        configured = configured_base_url(settings)  # shown without a password, query or fragment it may hold
        base_url = gr.Textbox(value=shown_url(configured) if configured else "",
                              label="Base URL (e.g. an OpenAI-compatible server)",
                              info="http(s) only, no password in it; the configured API key is never sent to a "
                                   "base URL typed here (experts only)")
        gr.Markdown(_keys_status(settings))
        apply = gr.Button("Apply to this conversation")
        status = gr.Markdown()
    return SimpleNamespace(backend=backend, model=model, base_url=base_url, apply=apply, status=status)


# -- handlers: translate between components and assistant/ ------------------------------------------
class Handlers:
    """What each event does; the rights of the person are looked up on every request."""

    def __init__(self, settings, access: Access, files_root: Path):
        self.settings, self.access, self.files_root = settings, access, files_root
        self._kb_lock = threading.Lock()
        self.live = LiveSessions()  # so that a reloaded page continues its conversation

    def kb(self):
        with self._kb_lock:  # one opening at a time: the page load and a first message may ask at once
            return open_kb(self.settings)

    def user(self, request: gr.Request):
        return self.access.user(getattr(request, "username", None))

    def conversation(self, conv, request) -> Conversation:
        return conv or Conversation(self.settings, self.user(request), self.kb, self.files_root, self.live)

    def chat(self, message, class_name, parts, k, conv, request: gr.Request):
        conv, message = self.conversation(conv, request), message or {}
        busy = gr.MultimodalTextbox(value=None, interactive=False)
        for messages in conv.turn(message.get("text", ""), message.get("files", []), class_name=class_name,
                                  switches=parts, references=int(k)):
            yield messages, busy, conv
        yield conv.view.messages, gr.MultimodalTextbox(value=None, interactive=True), conv

    def clear(self, conv, request: gr.Request):
        conv = self.conversation(conv, request)
        conv.clear()
        return [], conv

    def show_knowledge(self, name, chat_class, conv):
        store = self.kb()
        name = name or chat_class or (conv.last_class() if conv else None)
        choices = [(display_class(c), c) for c in store.classes()]
        pictures, ids = refs.gallery(store, name)
        return (gr.Dropdown(choices=choices), gr.Dropdown(choices=choices, value=name), panel.rules_table(store, name),
                panel.references_table(store, name), pictures, ids)

    def on_load(self, request: gr.Request):
        can_edit = self.user(request).can_edit_knowledge
        return (_header(self.user(request)), gr.Group(visible=can_edit), gr.Button(visible=can_edit),
                gr.Button(interactive=can_edit))

    @staticmethod
    def pick_rule(table, evt: gr.SelectData):
        row = table.iloc[evt.index[0]].tolist()
        return row[0], row[2], row[1], row[5] == "yes"

    # Gradio hands over gr.Request only to a parameter annotated with it, so each action is spelled out.
    def add_rule(self, class_name, text, kind, request: gr.Request):
        return panel.add_rule(self.kb(), self.user(request), class_name, text, kind)

    def edit_rule(self, rule_id, text, kind, active, request: gr.Request):
        return panel.edit_rule(self.kb(), self.user(request), rule_id, text, kind, active)

    def deactivate_rule(self, rule_id, request: gr.Request):
        return panel.deactivate_rule(self.kb(), self.user(request), rule_id)

    def ask_delete(self, rule_id, request: gr.Request):
        status, pending = panel.request_delete(self.user(request), rule_id)
        return status, pending, gr.Row(visible=pending is not None)

    def confirm_delete(self, pending, request: gr.Request):
        return panel.confirm_delete(self.kb(), self.user(request), pending), None, gr.Row(visible=False)

    def add_reference(self, name, conv, request: gr.Request):
        return panel.add_query_as_reference(self.kb(), self.user(request), conv, name)

    def use_backend(self, name, model, base_url, conv, request: gr.Request):
        conv = self.conversation(conv, request)
        try:
            return conv.use_backend(self.user(request), name, (model or "").strip(), (base_url or "").strip()), conv
        except InputError as exc:  # a refused or bad setting is one line in the panel
            return f"⚠️ {shown_text(one_line(str(exc)))}", conv
        except Exception as exc:  # noqa: BLE001 - never a traceback or an SDK's text in the page; the log has it
            log.exception("backend switch failed in conversation %s", conv.id)
            return f"⚠️ the backend could not be switched ({type(exc).__name__}); see the server log", conv


def build_app(settings) -> gr.Blocks:
    """The chat app for these settings, not yet launched."""
    access = Access.from_settings(settings)
    on = Handlers(settings, access, _temp_root(settings) / "anomaly-chat")
    demo_files = demo_data.ensure_demo_data(settings.home)
    with gr.Blocks(title="anomaly-chat", fill_width=True, delete_cache=(3600, 86400)) as demo:
        conv = gr.State(None, time_to_live=CONVERSATION_IDLE_S, delete_callback=lambda c: c.close() if c else None)
        pending = gr.State(None)
        header = gr.Markdown(_header(access.user(None)) if not access.enabled else "# 🔍 anomaly-chat",
                             elem_id="app-header")
        with gr.Tabs() as tabs:
            chat, kb = _inspect_tab(settings, demo_files), _knowledge_tab()
            history, prefs = panels.history_tab(), _settings_tab(settings)
        shown = [chat.class_box, kb.kb_class, kb.rules, kb.references, kb.gallery, kb.tools.ids]
        show = (on.show_knowledge, [kb.kb_class, chat.class_box, conv], shown)

        turn = chat.box.submit(on.chat, [chat.box, chat.class_box, chat.switches, chat.n_refs, conv],
                               [chat.chatbot, chat.box, conv], api_name="chat")
        turn.then(*show, **QUIET)  # a rule taught in the chat appears in the panel at once
        chat.new_chat.click(on.clear, [conv], [chat.chatbot, conv], api_name="new_conversation")
        chat.chatbot.clear(on.clear, [conv], [chat.chatbot, conv], **PRIVATE)  # the chat's own bin icon
        demo.load(on.on_load, None, [header, kb.editor, kb.add_reference, prefs.apply], **PRIVATE)
        demo.load(*show, **QUIET)
        kb.refresh.click(*show, api_name="knowledge")
        kb.kb_class.input(*show, **QUIET)
        kb.rules.select(on.pick_rule, [kb.rules], [kb.rule_id, kb.rule_text, kb.rule_kind, kb.rule_active], **PRIVATE)
        for event in (kb.add.click(on.add_rule, [kb.kb_class, kb.rule_text, kb.rule_kind], kb.status,
                                   api_name="add_rule"),
                      kb.save.click(on.edit_rule, [kb.rule_id, kb.rule_text, kb.rule_kind,
                                                                 kb.rule_active], kb.status, api_name="edit_rule"),
                      kb.deactivate.click(on.deactivate_rule, [kb.rule_id], kb.status,
                                          api_name="deactivate_rule"),
                      kb.confirm.click(on.confirm_delete, [pending], [kb.status, pending, kb.confirm_row],
                                       api_name="confirm_delete"),
                      kb.add_reference.click(on.add_reference, [kb.kb_class, conv], kb.status, api_name="add_reference")):
            event.then(*show, **QUIET)
        kb.delete.click(on.ask_delete, [kb.rule_id], [kb.status, pending, kb.confirm_row], api_name="request_delete")
        kb.cancel.click(lambda: ("Nothing deleted.", None, gr.Row(visible=False)), None,
                        [kb.status, pending, kb.confirm_row], **PRIVATE)
        prefs.apply.click(on.use_backend, [prefs.backend, prefs.model, prefs.base_url, conv], [prefs.status, conv],
                          api_name="use_backend")
        panels.wire(demo, on, chat, kb, history, conv, tabs, show)
    demo.queue(default_concurrency_limit=max(2, os.cpu_count() or 2), max_size=64)
    return demo


def launch(demo: gr.Blocks, settings, host: str = "127.0.0.1", port: int = 7860, **kwargs):
    """Start the app (theme, css, sign-in, upload limit, allowed paths); returns what demo.launch returns."""
    access = Access.from_settings(settings)
    return demo.launch(server_name=host, server_port=port, theme=_theme(), css=CSS,
                       auth=access.sign_in if access.enabled else None,
                       auth_message="Sign in with the name and password your administrator gave you.",
                       max_file_size=f"{settings.max_upload_mb}mb", allowed_paths=[str(settings.home / "demo")],
                       show_error=False, run_history=False, **kwargs)  # no "Runs" panel: it showed server paths


def main(settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Build and serve the app until interrupted."""
    demo = build_app(settings)
    launch(demo, settings, host, port, prevent_thread_lock=True)
    warmup.start(settings)  # the store, the embedder and the vision backbone load once the page is served
    demo.block_thread()


if __name__ == "__main__":
    from assistant.config import load_settings

    parser = argparse.ArgumentParser(description="anomaly-chat: the chat app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    arguments = parser.parse_args()
    main(load_settings(), host=arguments.host, port=arguments.port)
