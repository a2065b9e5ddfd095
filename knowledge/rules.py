"""Rules in their Chroma collection: the text is the document (embedded by the local model),
everything else is metadata. Two extra metadata fields are kept beside the Rule's own:
`expert_changed` (an expert edited a seed rule, so a new seed must leave it alone) and `updated_at`.
"""

from __future__ import annotations

from dataclasses import replace

from knowledge.models import Rule, now_iso
from tools.errors import NotFoundError

BATCH = 1000  # well under Chroma's maximum batch size
SEARCH_MARGIN = 10


class RuleBook:
    """Reading and writing rules; validation and locking are the caller's business."""

    def __init__(self, collection_of):
        self._collection_of = collection_of  # a function: the collection object changes when Chroma reloads

    @property
    def collection(self):
        return self._collection_of()

    def get(self, rule_id: str) -> Rule:
        """The rule with this id, or NotFoundError."""
        found = self.collection.get(ids=[rule_id], include=["documents", "metadatas"])
        if not found["ids"]:
            raise NotFoundError(f"no rule with id {rule_id!r}; list the ids with `anomaly-chat kb rules CLASS`")
        return Rule.from_record(rule_id, found["documents"][0], found["metadatas"][0])

    def exists(self, rule_id: str) -> bool:
        return bool(self.collection.get(ids=[rule_id], include=[])["ids"])

    def for_class(self, class_name: str, include_inactive: bool = False) -> list[Rule]:
        """A class's rules, oldest first."""
        where = {"class_name": class_name} if include_inactive else {
            "$and": [{"class_name": class_name}, {"active": True}]}
        return self._sorted(self.collection.get(where=where, include=["documents", "metadatas"]))

    def all(self) -> list[tuple[Rule, dict]]:
        """Every rule with its full metadata (for export and seed upgrades)."""
        found = self.collection.get(include=["documents", "metadatas"])
        pairs = [(Rule.from_record(i, d, m), m) for i, d, m in zip(found["ids"], found["documents"],
                                                                     found["metadatas"], strict=True)]
        return sorted(pairs, key=lambda pair: (pair[0].created_at, pair[0].id))

    def ids_of_class(self, class_name: str) -> list[str]:
        return self.collection.get(where={"class_name": class_name}, include=[])["ids"]

    def put(self, rules: list[Rule], expert_changed: list[bool] | None = None) -> None:
        """Insert or replace rules (embedding their texts in batches)."""
        flags = expert_changed or [False] * len(rules)
        stamp = now_iso()
        for start in range(0, len(rules), BATCH):
            chunk = rules[start:start + BATCH]
            self.collection.upsert(
                ids=[r.id for r in chunk], documents=[r.text for r in chunk],
                metadatas=[{**r.metadata(), "expert_changed": bool(f), "updated_at": stamp}
                           for r, f in zip(chunk, flags[start:start + BATCH], strict=True)])

    def change(self, rule: Rule, **changes) -> Rule:
        """Apply changes to a stored rule and mark it as changed by an expert."""
        changed = replace(rule, **changes)
        self.put([changed], [True])
        return changed

    def delete(self, ids: list[str]) -> None:
        for start in range(0, len(ids), BATCH):
            self.collection.delete(ids=ids[start:start + BATCH])

    def search(self, text: str, k: int, class_name: str | None = None) -> list[tuple[Rule, float]]:
        """Active rules nearest in meaning to text, with cosine similarity, most similar first."""
        # Filtering on "active" inside Chroma makes it list every active rule first (slow with many
        # rules), so ask for a few more and drop inactive ones here; ask exactly only if too few remain.
        where = {"class_name": class_name} if class_name is not None else None
        found = self._query(text, k + SEARCH_MARGIN, where)
        hits = [hit for hit in found if hit[0].active]
        if len(hits) < k and len(found) == k + SEARCH_MARGIN:  # more rules exist, some crowded out
            active = {"active": True} if where is None else {"$and": [where, {"active": True}]}
            hits = self._query(text, k, active)
        return sorted(hits, key=lambda hit: (-round(hit[1], 6), hit[0].id))[:k]

    def _query(self, text: str, n: int, where: dict | None) -> list[tuple[Rule, float]]:
        found = self.collection.query(query_texts=[text], n_results=n, where=where,
                                      include=["documents", "metadatas", "distances"])
        return [(Rule.from_record(i, d, m), 1.0 - float(dist)) for i, d, m, dist in zip(
            found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0], strict=True)]

    @staticmethod
    def _sorted(found: dict) -> list[Rule]:
        rules = [Rule.from_record(i, d, m) for i, d, m in zip(found["ids"], found["documents"],
                                                                found["metadatas"], strict=True)]
        return sorted(rules, key=lambda r: (r.created_at, r.id))
