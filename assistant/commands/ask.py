"""`anomaly-chat ask FILE`: one analysis, printed as text or as one JSON object."""

from __future__ import annotations

import sys

from assistant.commands.common import log_inspection, open_kb, print_json, settings_from
from assistant.prompts import DEFAULT_STRATEGY


def add_backend_flags(parser) -> None:
    """--backend (the registered backends), --model and --base-url, for every command that runs a model."""
    from assistant.backends.registry import AUTO, BACKENDS, backend_names

    examples = ", ".join(cls.default_model for cls in BACKENDS.values() if cls.needs_network)
    parser.add_argument("--backend", choices=[AUTO, *backend_names()], help="model backend (default: auto)")
    parser.add_argument("--model", help=f"model name, e.g. {examples}, llava")
    parser.add_argument("--base-url", help="the backend's server, e.g. an OpenAI-compatible one such as "
                        "http://localhost:11434/v1 (Ollama)")


def backend_from(args):
    """Settings for a command's backend flags, and the backend they choose, built once."""
    from assistant.backends.registry import create_backend, with_base_url

    settings = with_base_url(settings_from(args, backend=args.backend, model=args.model), args.base_url)
    return settings, create_backend(settings)


def register(sub) -> None:
    parser = sub.add_parser("ask", help="inspect one file and print the verdict")
    parser.add_argument("file", help="image, point cloud, series or video to inspect")
    parser.add_argument("question", nargs="?", default="", help="optional question about the file")
    parser.add_argument("--class", dest="class_name", help="class of the object (default: suggested from the image)")
    parser.add_argument("--ref", action="append", default=[], metavar="FILE", help="a reference normal for this run (repeatable)")
    parser.add_argument("--rule", action="append", default=[], metavar="TEXT", help="an extra normality rule for this run (repeatable)")
    parser.add_argument("--strategy", help=f"prompt strategy, e.g. {DEFAULT_STRATEGY} (default) or naive")
    parser.add_argument("--references", type=int, help="how many stored reference normals to use (default 1)")
    add_backend_flags(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--evidence", metavar="OUT.png", help="also write the evidence picture (reference | query | "
                        "heatmap, the series plot with its windows, or the scan's deviation views) to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each step on stderr")
    parser.set_defaults(func=run)


def make_session(args, **session_kwargs):
    from assistant.session import Session

    settings, backend = backend_from(args)
    return Session(settings, open_kb(settings), backend, **session_kwargs)


def run(args) -> int:
    evidence_file = _evidence_target(args.evidence) if args.evidence else None
    session = make_session(args)
    events = session.send(args.question, [args.file, *args.ref], class_name=args.class_name, strategy=args.strategy,
                          references=args.references, extra_rules=args.rule)
    verdict, picture = None, None
    for event in events:
        if args.verbose and event.kind in ("step", "notice") and (event.status != "pending") and (event.title or event.text):
            print(f"· {event.title} {event.text}".rstrip(), file=sys.stderr)
        if event.kind == "notice" and event.title == "evidence" and event.images:
            picture = event.images[0]
        if event.kind == "verdict":
            verdict = event.verdict
    log_inspection(session, verdict)
    if evidence_file is not None:
        _write_evidence(picture, evidence_file)
    if args.json:
        print_json({"file": args.file, "label": verdict.label, **verdict.to_dict()})
    else:
        print(format_verdict(verdict))
    return 0


def format_verdict(verdict) -> str:
    score = "n/a" if verdict.score is None else f"{verdict.score:.2f}"
    lines = [f"{verdict.label.upper()}  score {score} ({verdict.score_source})  class {verdict.class_name or 'unknown'}"
             f"  [{verdict.backend}/{verdict.model}]"]
    if verdict.location.get("where"):
        lines.append(f"where: {verdict.location['where']}")
    lines.append(verdict.reasoning)
    if verdict.parse_error:
        lines.append(f"(the model's reply could not be read: {verdict.parse_error})")
    lines += [f"note: {n}" for n in verdict.notes]
    return "\n".join(lines)


def _evidence_target(name: str):
    """Where --evidence writes, checked before the analysis runs (a PNG or JPEG in an existing folder)."""
    from pathlib import Path

    from tools.errors import InputError

    target = Path(name)
    if target.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise InputError(f"--evidence {name}: give a file name ending in .png or .jpg")
    if not target.parent.is_dir():
        raise InputError(f"--evidence {name}: the folder {target.parent} does not exist; create it first")
    return target


def _write_evidence(picture, target) -> None:
    """Write the evidence picture, or say on stderr why there is none (no reference to compare with)."""
    from tools.errors import InputError

    if picture is None:
        print(f"no evidence picture to write to {target}: the expert had nothing to compare with "
              "(add reference normals with `anomaly-chat kb add-ref`)", file=sys.stderr)
        return
    try:
        picture.convert("RGB").save(target)
    except OSError as exc:
        raise InputError(f"cannot write {target} ({exc.strerror or exc}); choose another place") from None
