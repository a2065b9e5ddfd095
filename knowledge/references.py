"""Reference normals in their Chroma collection: the embedding is the image descriptor
(tools.experts.descriptor), the metadata says where the file is kept and who added it.
"""

from __future__ import annotations

import numpy as np

from knowledge.files import FileStore
from knowledge.models import ReferenceSample
from tools.errors import NotFoundError

BATCH = 1000
DESCRIPTOR_CACHE_SIZE = 50_000  # about 70 MB of 352-d float32 vectors


class ReferenceShelf:
    """Reading and writing reference records; the files themselves live in a FileStore."""

    def __init__(self, collection_of, files: FileStore, version_of=lambda: None):
        self._collection_of = collection_of  # a function: the collection object changes when Chroma reloads
        self.files = files
        # Descriptors by reference id, kept between searches: reading 1,000 of them from Chroma costs
        # more than the whole search. A reference's id fixes its content and so its descriptor; the
        # cache is still dropped whenever the store's version (any write, any reload) changes.
        self._descriptors: dict[str, np.ndarray] = {}
        self._version_of, self._cached_version = version_of, None

    @property
    def collection(self):
        return self._collection_of()

    def sample(self, ref_id: str, meta: dict) -> ReferenceSample:
        return ReferenceSample(id=ref_id, class_name=meta["class_name"], modality=meta["modality"],
                               path=self.files.absolute(meta["file"]), sha256=meta["sha256"],
                               note=meta["note"], author=meta["author"], created_at=meta["created_at"])

    def get(self, ref_id: str) -> ReferenceSample:
        found = self.collection.get(ids=[ref_id], include=["metadatas"])
        if not found["ids"]:
            raise NotFoundError(f"no reference with id {ref_id!r}; list them with `anomaly-chat kb rules CLASS --json`")
        return self.sample(ref_id, found["metadatas"][0])

    def get_many(self, ids: list[str]) -> list[ReferenceSample]:
        """The references with these ids, in the same order (ids must exist)."""
        found = self.collection.get(ids=list(dict.fromkeys(ids)), include=["metadatas"])
        by_id = dict(zip(found["ids"], found["metadatas"], strict=True))
        return [self.sample(i, by_id[i]) for i in ids]

    def existing(self, ids: list[str]) -> set[str]:
        return set(self.collection.get(ids=ids, include=[])["ids"]) if ids else set()

    def for_class(self, class_name: str) -> list[ReferenceSample]:
        """A class's references, oldest first."""
        found = self.collection.get(where={"class_name": class_name}, include=["metadatas"])
        samples = [self.sample(i, m) for i, m in zip(found["ids"], found["metadatas"], strict=True)]
        return sorted(samples, key=lambda s: (s.created_at, s.id))

    def records(self, with_descriptors: bool = False) -> dict:
        """Every record: ids, metadatas (and embeddings when asked)."""
        include = ["metadatas", "embeddings"] if with_descriptors else ["metadatas"]
        return self.collection.get(include=include)

    def put(self, ids: list[str], metadatas: list[dict], descriptors: list[np.ndarray]) -> None:
        for start in range(0, len(ids), BATCH):
            end = start + BATCH
            self.collection.upsert(ids=ids[start:end], metadatas=metadatas[start:end],
                                   embeddings=[np.asarray(d, dtype=np.float32) for d in descriptors[start:end]])

    def delete(self, ids: list[str]) -> None:
        for start in range(0, len(ids), BATCH):
            self.collection.delete(ids=ids[start:start + BATCH])

    def nearest(self, class_name: str, descriptor: np.ndarray, k: int) -> list[ReferenceSample]:
        """The k references of a class most similar to the descriptor; exact, ties broken by id."""
        ids = self.collection.get(where={"class_name": class_name}, include=[])["ids"]
        if not ids or k <= 0:
            return []
        similarity = self._descriptor_matrix(ids) @ descriptor
        # Rounded so that equal images tie exactly despite float noise; then the id decides.
        order = sorted(range(len(ids)), key=lambda i: (-round(float(similarity[i]), 5), ids[i]))
        return self.get_many([ids[i] for i in order[:k]])

    def _descriptor_matrix(self, ids: list[str]) -> np.ndarray:
        version = self._version_of()
        if version != self._cached_version or len(self._descriptors) > DESCRIPTOR_CACHE_SIZE:
            self._descriptors, self._cached_version = {}, version
        missing = [i for i in ids if i not in self._descriptors]
        for start in range(0, len(missing), BATCH):
            found = self.collection.get(ids=missing[start:start + BATCH], include=["embeddings"])
            self._descriptors.update(zip(found["ids"], np.asarray(found["embeddings"], dtype=np.float32),
                                         strict=True))
        return np.stack([self._descriptors[i] for i in ids])

    def suggest_classes(self, descriptor: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Classes whose best reference is most similar to the descriptor, with that similarity."""
        count = self.collection.count()
        if count == 0 or k <= 0:
            return []
        found = self.collection.query(query_embeddings=[descriptor], n_results=min(count, max(50, 20 * k)),
                                      include=["metadatas", "distances"])
        best: dict[str, float] = {}
        for meta, distance in zip(found["metadatas"][0], found["distances"][0], strict=True):
            best[meta["class_name"]] = max(best.get(meta["class_name"], -1.0), 1.0 - float(distance))
        ranked = sorted(best.items(), key=lambda item: (-round(item[1], 5), item[0]))
        return [(name, round(sim, 4)) for name, sim in ranked[:k]]
