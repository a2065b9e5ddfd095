"""`anomaly-chat ui`: start the Gradio app (same as `python ui.py`)."""

from __future__ import annotations

from assistant.commands.common import settings_from


def register(sub) -> None:
    parser = sub.add_parser("ui", help="start the chat app in the browser")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for the network)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import ui

    ui.main(settings_from(args), host=args.host, port=args.port)
    return 0
