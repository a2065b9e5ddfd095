"""The knowledge base: normality rules and reference normals per class, in Chroma.

One directory per knowledge base holds the embedded Chroma database (unless a server URL is
given), the reference files (content-addressed) and a lock file. Every write takes the lock, so
several processes can write at once; every open repairs what a killed process may have left.
In server mode the directory must be shared by all app instances (it holds the files and the lock).

Class names are matched tolerant of case, spaces, hyphens and underscores (`canonical_class`).
Reading an unknown class gives empty results; changing or deleting something unknown raises
NotFoundError.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image

from knowledge import names
from knowledge.archive import export_archive, merge_archive, planned_deletions, read_archive
from knowledge.classes import MetaRecords, check_setting
from knowledge.connection import Connection, acquire
from knowledge.embedding import LocalSentenceEmbedding, check_model_path
from knowledge.files import FileStore
from knowledge.intake import PreparedFile, files_to_import, prepare, prepare_all
from knowledge.models import ReferenceSample, Rule, new_rule_id, now_iso, reference_id
from knowledge.names import canonical_class
from knowledge.references import ReferenceShelf
from knowledge.repair import repair
from knowledge.rules import RuleBook
from knowledge.seed import apply_seed, needs_seeding, seed_texts
from tools.errors import InputError, NotFoundError
from tools.experts.descriptor import image_descriptor

__all__ = ["KnowledgeBase", "ReferenceSample", "Rule", "canonical_class"]
_KIND_ORDER = {"normality": 0, "logical": 1, "defect": 2}  # what normal is, then constraints, then known defects


class KnowledgeBase:
    """Rules and reference normals per class; open with KnowledgeBase.open(path)."""

    def __init__(self, path: Path, connection: Connection):
        self.path = path
        self.server = not connection.embedded
        self._connection = connection
        self._meta = MetaRecords(lambda: connection.collections.meta)
        self._rules = RuleBook(lambda: connection.collections.rules)
        self._shelf = ReferenceShelf(lambda: connection.collections.references, FileStore(path),
                                     version_of=connection.version)
        self._closed = False

    @classmethod
    def open(cls, path, chroma_url: str | None = None, embedding_model_path: str | None = None) -> KnowledgeBase:
        """Open (creating if needed) the knowledge base at path; embedded Chroma unless chroma_url is given."""
        path = Path(path).expanduser()
        if path.exists() and not path.is_dir():
            raise InputError(f"knowledge base directory {path} is a file; point the data directory elsewhere")
        path.mkdir(parents=True, exist_ok=True)
        check_model_path(embedding_model_path)
        kb = cls(path, acquire(path, chroma_url, LocalSentenceEmbedding(embedding_model_path)))
        if kb._read(lambda: needs_seeding(kb._meta)):
            kb._connection.embed_ahead(seed_texts())  # outside the lock: other processes need not wait
        with kb._writing():
            if needs_seeding(kb._meta):
                apply_seed(kb._meta, kb._rules)
            repair(kb._shelf, kb._shelf.files)
        return kb

    def close(self) -> None:
        """Let go of the Chroma connection (closed when the last knowledge base on it closes)."""
        if not self._closed:
            self._closed = True
            self._connection.release()

    def _writing(self):
        return self._connection.writing()

    def _read(self, operation):
        return self._connection.read(operation)

    # -- classes --------------------------------------------------------------------------------
    def classes(self) -> list[str]:
        """Names (canonical) of every known class, sorted."""
        return self._read(self._meta.class_names)

    def display_name(self, class_name: str) -> str:
        """The class name as first written by a person or the seed (e.g. 'metal nut')."""
        name = canonical_class(class_name)
        record = self._read(lambda: self._meta.class_record(name))
        return record["display"] if record else names.display_name(class_name)

    def class_settings(self, class_name: str) -> dict:
        """Per-class flags for the vision expert, e.g. {"rotation_invariant": True, "matching": "free"}."""
        name = canonical_class(class_name)
        return self._read(lambda: self._meta.settings(name))

    def set_class_setting(self, class_name: str, key: str, value) -> dict:
        """Set one per-class flag (kept across seed upgrades); returns the class's settings."""
        check_setting(key, value)
        name = canonical_class(class_name)
        with self._writing():
            self._meta.ensure_class(name, names.display_name(class_name))
            self._meta.set_expert_setting(name, key, value)
        return self.class_settings(name)

    def delete_class(self, class_name: str) -> None:
        """Delete a class with its rules and references (seed ones do not come back)."""
        name = canonical_class(class_name)
        with self._writing():
            if self._meta.class_record(name) is None:
                raise NotFoundError(f"no class {class_name!r}; known classes: `anomaly-chat kb classes`")
            rule_ids = self._rules.ids_of_class(name)
            self._meta.add_tombstones([i for i in rule_ids if i.startswith("seed.")] + [f"class:{name}"])
            self._rules.delete(rule_ids)
            self._shelf.delete([r.id for r in self._shelf.for_class(name)])
            self._meta.remove_class(name)
            repair(self._shelf, self._shelf.files)

    # -- rules ----------------------------------------------------------------------------------
    def rules(self, class_name: str, include_inactive: bool = False) -> list[Rule]:
        """A class's rules: normality first, then logical, then defects; oldest first within a kind."""
        name = canonical_class(class_name)
        found = self._read(lambda: self._rules.for_class(name, include_inactive))
        return sorted(found, key=lambda r: (_KIND_ORDER.get(r.kind, 9), r.created_at, r.id))

    def get_rule(self, rule_id: str) -> Rule:
        """The rule with this id; NotFoundError if there is none."""
        return self._read(lambda: self._rules.get(rule_id))

    def add_rule(self, class_name: str, text: str, *, kind: str = "normality", modality: str = "image",
                 author: str = "expert", source: str = "expert") -> Rule:
        """Store a new rule for a class (the class is created if new)."""
        return self.add_rules(class_name, [text], kind=kind, modality=modality, author=author, source=source)[0]

    def add_rules(self, class_name: str, texts: list[str], *, kind: str = "normality", modality: str = "image",
                  author: str = "expert", source: str = "expert") -> list[Rule]:
        """Store several rules of one class at once (one batch of embeddings)."""
        name = canonical_class(class_name)
        stamp = now_iso()
        new = [Rule(new_rule_id(), name, names.modality(modality), names.rule_text(t), names.kind(kind),
                    names.short_text(author, "author"), stamp, names.short_text(source, "source"))
               for t in texts]
        self._connection.embed_ahead([r.text for r in new])
        with self._writing():
            self._meta.ensure_class(name, names.display_name(class_name))
            self._rules.put(new)
        return new

    def edit_rule(self, rule_id: str, *, text: str | None = None, kind: str | None = None,
                  active: bool | None = None, author: str = "expert") -> Rule:
        """Change a rule's text, kind or active flag; a new text records the editor as its author."""
        changes = {}
        if text is not None:
            changes.update(text=names.rule_text(text), author=names.short_text(author, "author"))
        if kind is not None:
            changes["kind"] = names.kind(kind)
        if active is not None:
            changes["active"] = bool(active)
        if not changes:
            raise InputError("nothing to change; give a new text, kind or active flag")
        if text is not None:
            self._connection.embed_ahead([changes["text"]])
        with self._writing():
            return self._rules.change(self._rules.get(rule_id), **changes)

    def deactivate_rule(self, rule_id: str) -> Rule:
        """Keep a rule but stop using it (it no longer appears in rules() or search_rules())."""
        with self._writing():
            return self._rules.change(self._rules.get(rule_id), active=False)

    def delete_rule(self, rule_id: str) -> None:
        """Delete a rule for good; a deleted seed rule is not brought back by a later seed."""
        with self._writing():
            rule = self._rules.get(rule_id)
            if rule.source == "seed":
                self._meta.add_tombstones([rule.id])
            self._rules.delete([rule.id])

    def search_rules(self, text: str, k: int = 5, class_name: str | None = None) -> list[tuple[Rule, float]]:
        """Active rules closest in meaning to text, with cosine similarity, most similar first."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("search text is empty; describe what you are looking for")
        if k < 1:
            raise InputError(f"k must be at least 1, not {k}")
        name = canonical_class(class_name) if class_name is not None else None
        return self._read(lambda: self._rules.search(text.strip(), k, name))

    # -- references -----------------------------------------------------------------------------
    def add_reference(self, class_name: str, file, *, modality: str = "image", view_image: Image.Image | None = None,
                      note: str = "", author: str = "expert") -> ReferenceSample:
        """Store a normal sample of a class; without view_image the file must be a readable image."""
        name, modality, note, author = self._reference_fields(class_name, modality, note, author)
        prepared = prepare(file, view_image)
        return self._store_references(class_name, name, [prepared], modality, note, author)[0]

    def import_references(self, directory, class_name: str, *, modality: str = "image",
                          view_for: Callable[[Path], Image.Image] | None = None, note: str = "",
                          author: str = "expert") -> list[ReferenceSample]:
        """Store every image in a folder (every file, described by view_for, when it is given)."""
        name, modality, note, author = self._reference_fields(class_name, modality, note, author)
        prepared = prepare_all(files_to_import(directory, view_for), view_for)
        return self._store_references(class_name, name, prepared, modality, note, author)

    def references(self, class_name: str) -> list[ReferenceSample]:
        """A class's reference normals, oldest first."""
        name = canonical_class(class_name)
        return self._read(lambda: self._shelf.for_class(name))

    def get_reference(self, ref_id: str) -> ReferenceSample:
        """The reference with this id; NotFoundError if there is none."""
        return self._read(lambda: self._shelf.get(ref_id))

    def delete_reference(self, ref_id: str) -> None:
        """Delete a reference; its file goes too unless another reference shares it."""
        with self._writing():
            self._shelf.get(ref_id)
            self._shelf.delete([ref_id])
            repair(self._shelf, self._shelf.files)

    def nearest_references(self, class_name: str, image: Image.Image, k: int) -> list[ReferenceSample]:
        """The k references of a class most similar to image, nearest first (ties by id)."""
        name, descriptor = canonical_class(class_name), _descriptor(image)
        return self._read(lambda: self._shelf.nearest(name, descriptor, k))

    def suggest_classes(self, image: Image.Image, k: int = 3) -> list[tuple[str, float]]:
        """The known classes an unlabelled image most resembles, with similarity, best first."""
        descriptor = _descriptor(image)
        return self._read(lambda: self._shelf.suggest_classes(descriptor, k))

    def _reference_fields(self, class_name, modality, note, author):
        return (canonical_class(class_name), names.modality(modality),
                names.short_text(note, "note", names.MAX_NOTE_CHARS, allow_empty=True),
                names.short_text(author, "author"))

    def _store_references(self, display, name, prepared: list[PreparedFile], modality, note, author):
        unique = {reference_id(name, p.sha256): p for p in prepared}
        with self._writing():
            self._meta.ensure_class(name, names.display_name(display))
            present = self._shelf.existing(list(unique))
            new = {i: p for i, p in unique.items() if i not in present}
            stored = {i: self._shelf.files.put(p.source, p.sha256, p.suffix) for i, p in new.items()}
            stamp = now_iso()
            self._shelf.put(list(new), [{"class_name": name, "modality": modality, "file": stored[i],
                                         "sha256": p.sha256, "size": p.size, "note": note, "author": author,
                                         "created_at": stamp} for i, p in new.items()],
                            [p.descriptor for p in new.values()])
            return self._shelf.get_many([reference_id(name, p.sha256) for p in prepared])

    # -- the whole store ------------------------------------------------------------------------
    def export(self, file) -> dict:
        """Write rules, references (with their files), classes and settings to one zip; returns counts."""
        with self._writing():
            return export_archive(Path(file), meta=self._meta, rules=self._rules, shelf=self._shelf)

    def import_archive(self, file, *, apply_deletions: bool = False) -> dict:
        """Merge an export into this knowledge base (records by id); nothing changes if it is refused.

        The deletions the archive records are returned in "deletions"; they are applied only with
        apply_deletions=True (an archive must not silently delete local knowledge)."""
        archive, manifest = read_archive(Path(file), store_dir=self.path)
        with archive:
            self._connection.embed_ahead([entry["text"] for entry in manifest["rules"]])
            with self._writing():
                return merge_archive(archive, manifest, meta=self._meta, rules=self._rules, shelf=self._shelf,
                                     apply_deletions=apply_deletions)

    def preview_import(self, file) -> dict:
        """What importing an export would do, without changing anything: counts and the deletions it asks for."""
        archive, manifest = read_archive(Path(file), store_dir=self.path)
        with archive:
            return {"classes": len(manifest["classes"]), "rules": len(manifest["rules"]),
                    "references": len(manifest["references"]),
                    "deletions": planned_deletions(manifest, meta=self._meta, rules=self._rules)}

    def repair(self, verify_hashes: bool = False) -> dict:
        """Make records and files agree (run on every open); returns what was removed."""
        with self._writing():
            return repair(self._shelf, self._shelf.files, verify_hashes=verify_hashes).to_dict()


def _descriptor(image):
    if not isinstance(image, Image.Image):
        raise InputError("expected a PIL image to compare with the references")
    return image_descriptor(image)
