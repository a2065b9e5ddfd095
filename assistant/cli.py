"""`anomaly-chat` command line: ui | ask | chat | render | eval | kb | users | log.

Exit codes: 0 success, 2 bad input or usage (one line on stderr), 1 internal or backend error.
Each command lives in assistant/commands/<name>.py with a `register(subparsers)` function; heavy
imports happen inside the handlers so that `--help` and bad usage answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from tools.errors import BackendError, InputError

COMMAND_MODULES = ["ui", "ask", "chat", "render", "eval", "kb", "users", "log"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as argparse does, without the usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="anomaly-chat", description="Anomaly-inspection chat assistant.")
    parser.add_argument("--home", help="data directory (default: $ANOMALY_CHAT_HOME or a per-user dir)")
    parser.add_argument("--config", help="config file (TOML); default <home>/config.toml")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        module = _command_module(name)
        if module is not None:
            module.register(sub)
    return parser


def _command_module(name: str):
    try:
        return importlib.import_module(f"assistant.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"assistant.commands.{name}":
            return None  # a command not built yet
        raise


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        _fail(f"error: {exc}")
        return 2
    except BackendError as exc:
        _fail(f"backend error: {exc}")
        return 1
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if args.debug:
            raise
        _fail(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (rerun with --debug for details)")
        return 1


def _fail(message: str) -> None:
    print(f"anomaly-chat: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
