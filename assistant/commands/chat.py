"""`anomaly-chat chat`: a terminal conversation on the same session code as the app."""

from __future__ import annotations

import shlex
import sys

from assistant.commands.ask import add_backend_flags, format_verdict, make_session
from assistant.commands.common import log_inspection
from assistant.prompts import DEFAULT_STRATEGY
from tools.errors import BackendError, InputError

HELP = ("Type a question or a rule. /file PATH [question] inspects a file, /class NAME sets the class, "
        "/quit ends.")


def register(sub) -> None:
    parser = sub.add_parser("chat", help="talk with the assistant in the terminal")
    parser.add_argument("--class", dest="class_name", help="class of the objects you will inspect")
    parser.add_argument("--strategy", help=f"prompt strategy (default {DEFAULT_STRATEGY})")
    parser.add_argument("--author", default="expert", help="name recorded with rules you teach")
    add_backend_flags(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    session = make_session(args, author=args.author)
    class_name = args.class_name
    print(HELP)
    for line in sys.stdin if not sys.stdin.isatty() else iter(lambda: input("you> "), None):
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line.startswith("/class "):
            class_name = line[7:].strip()
            print(f"class set to {class_name}")
            continue
        try:
            _turn(session, line, class_name, args.strategy)
        except (InputError, BackendError) as exc:
            print(f"error: {exc}")
    return 0


def _turn(session, line: str, class_name, strategy) -> None:
    files, text = [], line
    if line.startswith("/file "):
        parts = shlex.split(line[6:])
        if not parts:
            raise InputError("/file needs a path")
        files, text = parts[:1], " ".join(parts[1:])
    streamed = False
    for event in session.send(text, files, class_name=class_name, strategy=strategy):
        if event.kind == "answer" and streamed:
            print()
            continue
        streamed |= event.kind == "text"
        _show(event)
        if event.kind == "verdict":
            log_inspection(session, event.verdict)


def _show(event) -> None:
    if event.kind == "step" and event.status != "pending":
        first = (event.text or "").strip().splitlines()[:1]  # a step's text may hold several lines: show the first
        print(f"  · {event.title} ({event.duration_s:.1f}s) {(first[0] if first else '')[:120]}".rstrip())
    elif event.kind == "notice" and event.text:
        print(f"  note: {event.text}")
    elif event.kind == "text":
        print(event.text, end="", flush=True)
    elif event.kind == "verdict":
        print(format_verdict(event.verdict))
    elif event.kind == "answer":
        print(event.text)
