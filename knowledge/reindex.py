"""Re-embedding the rules when the configured text model changes.

Vectors of two models cannot be compared (or may not even have the same length), so the rules
collection records which model embedded it; opening with another model rebuilds it from the
stored texts, which are the source of truth.
"""

from __future__ import annotations

from dataclasses import replace

from knowledge.chroma import COSINE, RULES

BATCH = 1000


def reembed_if_model_changed(client, collections, text_embedding):
    """The collections, with the rules re-embedded by text_embedding if another model made them.

    The caller holds the write lock.
    """
    model = text_embedding.model_id()
    if (collections.rules.metadata or {}).get("embedding_model") == model:
        return collections
    found = collections.rules.get(include=["documents", "metadatas"])
    client.delete_collection(RULES)
    rules = client.create_collection(RULES, embedding_function=text_embedding, configuration=COSINE,
                                     metadata={"embedding_model": model})
    for start in range(0, len(found["ids"]), BATCH):
        end = start + BATCH
        rules.add(ids=found["ids"][start:end], documents=found["documents"][start:end],
                  metadatas=found["metadatas"][start:end])
    return replace(collections, rules=rules)
