"""`anomaly-chat log export [FILE] [--since WHEN] [--json] [--user NAME]`: the app's inspection log.

Every verdict the chat app gives is logged per person under the data directory
(assistant/app/inspection_log.py). `export` writes everyone's lines (or one person's), oldest first,
as CSV (the default) or JSON, to FILE or to stdout; FILE is written whole or not at all.
"""

from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("log", help="the inspection log of the chat app",
                                   description="The inspection log: every verdict the chat app gave.")
    commands = parser.add_subparsers(dest="log_command", required=True, parser_class=type(parser))
    export = commands.add_parser("export", help="write the log as CSV (or JSON) to FILE or stdout")
    export.add_argument("file", nargs="?", metavar="FILE", help="where to write (default: stdout)")
    export.add_argument("--since", metavar="WHEN",
                        help="only inspections from then on: 2026-01-05, 2026-01-05T08:00 (UTC), or 7d, 12h, 30m")
    export.add_argument("--json", action="store_true", help="write a JSON list instead of CSV")
    export.add_argument("--user", metavar="NAME", help="only this person's inspections")
    export.set_defaults(func=run_export)


def run_export(args) -> int:
    from assistant.app import inspection_log as log
    from assistant.commands.common import settings_from

    settings = settings_from(args)
    since = log.parse_since(args.since) if args.since else None
    lines = log.entries(settings.home, user=args.user, since=since)
    text = log.as_json(lines) if args.json else log.as_csv(lines)
    if args.file:
        log.write_file(Path(args.file), text)
        print(f"wrote {len(lines)} inspection(s) to {args.file}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
