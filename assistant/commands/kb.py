"""`anomaly-chat kb ...`: look at and change the knowledge base (classes, rules, reference normals).

Read commands take --json for machine-readable output. Bad input exits with 2 and one line on stderr.
"""

from __future__ import annotations

from functools import partial

from tools.errors import NotFoundError
from tools.vocabulary import MODALITIES, RULE_KINDS


def register(subparsers) -> None:
    parser = subparsers.add_parser("kb", help="knowledge base: classes, rules and reference normals",
                                   description="Look at and change the knowledge base.")
    commands = parser.add_subparsers(dest="kb_command", required=True, parser_class=type(parser))
    for add in (_classes, _rules, _add_rule,
                partial(_one_argument, "rm-rule", "delete a rule for good", "rule_id", "ID", run_rm_rule),
                partial(_one_argument, "deactivate-rule", "keep a rule but stop using it", "rule_id", "ID",
                        run_deactivate_rule),
                _add_ref, _import_refs, _search,
                partial(_one_argument, "export", "write the whole knowledge base to one zip file", "file", "FILE",
                        run_export),
                _import,
                _repair):
        add(commands)


def _one_argument(name: str, help_text: str, argument: str, metavar: str, func, commands) -> None:
    """A command that takes one positional argument and prints one line."""
    parser = commands.add_parser(name, help=help_text)
    parser.add_argument(argument, metavar=metavar)
    parser.set_defaults(func=func)


def _json_flag(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _provenance(parser, *, note: bool = True) -> None:
    """--note (optional) and --author: who adds knowledge, and why."""
    if note:
        parser.add_argument("--note", default="")
    parser.add_argument("--author", default="expert")


def _classes(commands) -> None:
    parser = commands.add_parser("classes", help="list the known classes")
    _json_flag(parser)
    parser.set_defaults(func=run_classes)


def _rules(commands) -> None:
    parser = commands.add_parser("rules", help="list a class's rules (and count its reference normals)")
    parser.add_argument("class_name", metavar="CLASS")
    parser.add_argument("--all", action="store_true", help="include deactivated rules")
    _json_flag(parser)
    parser.set_defaults(func=run_rules)


def _add_rule(commands) -> None:
    parser = commands.add_parser("add-rule", help="store a rule for a class")
    parser.add_argument("class_name", metavar="CLASS")
    parser.add_argument("text", metavar="TEXT")
    parser.add_argument("--kind", choices=RULE_KINDS, default="normality")
    parser.add_argument("--modality", choices=MODALITIES, default="image")
    _provenance(parser, note=False)
    _json_flag(parser)
    parser.set_defaults(func=run_add_rule)


def _add_ref(commands) -> None:
    parser = commands.add_parser("add-ref", help="store files as reference normals of a class")
    parser.add_argument("class_name", metavar="CLASS")
    parser.add_argument("files", metavar="FILE", nargs="+", help="images, point clouds, series or videos")
    _provenance(parser)
    _json_flag(parser)
    parser.set_defaults(func=run_add_ref)


def _import_refs(commands) -> None:
    parser = commands.add_parser("import-refs", help="store every image of a folder as reference normals")
    parser.add_argument("directory", metavar="DIR")
    parser.add_argument("--class", dest="class_name", required=True, metavar="CLASS")
    _provenance(parser)
    _json_flag(parser)
    parser.set_defaults(func=run_import_refs)


def _search(commands) -> None:
    parser = commands.add_parser("search", help="find rules by meaning")
    parser.add_argument("text", metavar="TEXT")
    parser.add_argument("--class", dest="class_name", metavar="CLASS", help="search one class only")
    parser.add_argument("-k", type=int, default=5, help="how many rules (default 5)")
    _json_flag(parser)
    parser.set_defaults(func=run_search)


def _import(commands) -> None:
    parser = commands.add_parser("import", help="merge a zip written by `kb export` into the knowledge base")
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--apply-deletions", action="store_true",
                        help="also delete the local rules and classes the archive records as deleted (listed first)")
    _json_flag(parser)
    parser.set_defaults(func=run_import)


def _repair(commands) -> None:
    parser = commands.add_parser("repair", help="make records and stored files agree again")
    parser.add_argument("--verify", action="store_true", help="also check every file's checksum (slower)")
    _json_flag(parser)
    parser.set_defaults(func=run_repair)


# -- handlers (heavy imports inside, so that --help and usage errors answer at once) ----------------
def _kb(args):
    from assistant.commands.common import open_kb, settings_from

    return open_kb(settings_from(args))


def _print(args, data, text: str) -> None:
    from assistant.commands.common import print_json

    if args.json:
        print_json(data)
    else:
        print(text)


def run_classes(args) -> int:
    """kb classes: every known class with its rule and reference counts."""
    kb = _kb(args)
    rows = [{"name": n, "display": kb.display_name(n), "rules": len(kb.rules(n)), "references": len(kb.references(n))}
            for n in kb.classes()]
    lines = [f"{r['name']:<22} {r['rules']:>3} rules {r['references']:>4} references  ({r['display']})" for r in rows]
    _print(args, rows, "\n".join(lines) or "No classes yet.")
    return 0


def run_rules(args) -> int:
    """kb rules CLASS: a class's rules, settings and references."""
    from knowledge.names import canonical_class

    kb = _kb(args)
    name = canonical_class(args.class_name)
    if name not in kb.classes():
        raise NotFoundError(f"no class {args.class_name!r}; list the classes with `anomaly-chat kb classes`")
    rules, refs = kb.rules(name, include_inactive=args.all), kb.references(name)
    data = {"class": name, "display": kb.display_name(name), "settings": kb.class_settings(name),
            "rules": [r.to_dict() for r in rules], "references": [s.to_dict() for s in refs]}
    lines = [f"[{r.id}] ({r.kind}{'' if r.active else ', inactive'}) {r.text}" for r in rules]
    lines.append(f"{len(refs)} reference normal(s)")
    _print(args, data, "\n".join(lines))
    return 0


def run_add_rule(args) -> int:
    """kb add-rule CLASS TEXT: store a rule."""
    rule = _kb(args).add_rule(args.class_name, args.text, kind=args.kind, modality=args.modality, author=args.author)
    _print(args, rule.to_dict(), f"Stored rule [{rule.id}] for {rule.class_name}: {rule.text}")
    return 0


def run_rm_rule(args) -> int:
    """kb rm-rule ID: delete a rule."""
    _kb(args).delete_rule(args.rule_id)
    print(f"Deleted rule {args.rule_id}")
    return 0


def run_deactivate_rule(args) -> int:
    """kb deactivate-rule ID: keep a rule but stop using it."""
    rule = _kb(args).deactivate_rule(args.rule_id)
    print(f"Deactivated rule [{rule.id}] of {rule.class_name}")
    return 0


def run_add_ref(args) -> int:
    """kb add-ref CLASS FILE...: store reference normals (point clouds, series, videos via their views)."""
    from assistant.commands.common import settings_from
    from tools.render.views import fix_class_camera, to_image

    settings = settings_from(args)
    # Every file is loaded and rendered first, so that one bad file stores nothing; reference scans given
    # together fix their class's camera together (not from the first file alone).
    artifacts = [_load_reference(f, settings) for f in args.files]
    fix_class_camera(args.class_name, settings.cache_dir, artifacts)
    prepared = [(a, None if a.kind == "image" else to_image(a, class_name=args.class_name, cache_dir=settings.cache_dir))
                for a in artifacts]
    kb = _kb(args)
    samples = [kb.add_reference(args.class_name, artifact.path, modality=artifact.kind, view_image=view,
                                note=args.note, author=args.author) for artifact, view in prepared]
    _print(args, [s.to_dict() for s in samples],
           "\n".join(f"Stored {f} as reference [{s.id}] of {s.class_name}" for f, s in zip(args.files, samples, strict=True)))
    return 0


def _load_reference(file, settings):
    from tools.inputs.artifacts import Limits, load

    return load(file, limits=Limits(max_bytes=settings.max_upload_mb * 2**20, max_pixels=settings.max_image_pixels))


def run_import_refs(args) -> int:
    """kb import-refs DIR --class CLASS: store every image of a folder."""
    samples = _kb(args).import_references(args.directory, args.class_name, note=args.note, author=args.author)
    _print(args, [s.to_dict() for s in samples], f"Stored {len(samples)} reference normal(s) of {args.class_name}")
    return 0


def run_search(args) -> int:
    """kb search TEXT: rules closest in meaning."""
    found = _kb(args).search_rules(args.text, k=args.k, class_name=args.class_name)
    data = [{**rule.to_dict(), "similarity": round(similarity, 4)} for rule, similarity in found]
    lines = [f"{s:.2f} [{r.id}] {r.class_name}: {r.text}" for r, s in found]
    _print(args, data, "\n".join(lines) or "No matching rules.")
    return 0


def run_export(args) -> int:
    """kb export FILE: the whole knowledge base to one zip."""
    counts = _kb(args).export(args.file)
    print(f"Exported {counts['rules']} rules, {counts['references']} references, "
          f"{counts['classes']} classes to {args.file}")
    return 0


def run_import(args) -> int:
    """kb import FILE [--apply-deletions]: merge an export; the deletions it records are listed, and
    applied only when asked."""
    kb = _kb(args)
    if args.apply_deletions and not args.json:
        _print_deletions(kb.preview_import(args.file)["deletions"], "will be deleted")
    counts = kb.import_archive(args.file, apply_deletions=args.apply_deletions)
    if args.json:
        _print(args, counts, "")
        return 0
    print(f"Imported {counts['rules']} rules, {counts['references']} references, {counts['classes']} classes")
    if counts["deletions"] and not counts["deletions_applied"]:
        _print_deletions(counts["deletions"], "were NOT deleted")
        print("The archive records these deletions; to apply them, run the import again with --apply-deletions.")
    elif counts["deletions_applied"]:
        print(f"Deleted {len(counts['deletions'])} item(s) as the archive records.")
    return 0


def _print_deletions(deletions: list[dict], what: str) -> None:
    if deletions:
        print(f"{len(deletions)} item(s) the archive records as deleted {what}:")
    for entry in deletions:
        label = f"rule {entry['id']} ({entry['class_name']}): {entry['text']}" if entry["what"] == "rule" \
            else f"class {entry['class_name']} (when it has no rules or references left)"
        print(f"  - {label}")


def run_repair(args) -> int:
    """kb repair: make records and files agree."""
    report = _kb(args).repair(verify_hashes=args.verify)
    _print(args, report, ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.items()))
    return 0
