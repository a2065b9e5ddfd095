"""The plain-torch BERT encoder gives the vectors sentence-transformers gives for the same model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from knowledge.bert_encoder import BertSentenceEncoder, supports
from knowledge.embedding import default_model_path, embed_texts
from knowledge.seed import seed_texts

TEXTS = ["Is anything wrong?", "  spaces around  ", "\tTabs\nand newlines\n", "",
         "Ünïcödé — dashes… and an emoji 🔩", "word " * 400,  # longer than the model's 256 tokens: truncated
         "a normal bracket has four open corner holes, one centre bore and no scratches or rust"]


@pytest.fixture(scope="module")
def library_model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)


@pytest.mark.slow
def test_bundled_model_gives_the_library_vectors(library_model):
    texts = seed_texts()[:40] + TEXTS
    ours = BertSentenceEncoder(default_model_path()).encode(texts)
    theirs = library_model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                  show_progress_bar=False)
    assert ours.shape == theirs.shape == (len(texts), 384)
    assert np.abs(ours - theirs).max() < 1e-5


def test_a_text_gets_the_same_vector_alone_and_in_a_batch():
    encoder = BertSentenceEncoder(default_model_path())
    batch = encoder.encode(TEXTS)
    alone = np.stack([encoder.encode([text])[0] for text in TEXTS])
    assert np.abs(batch - alone).max() < 1e-5
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_the_app_embeds_with_the_plain_encoder_for_the_bundled_model():
    from knowledge import embedding

    assert supports(default_model_path())
    embed_texts(["warm"])
    assert isinstance(embedding.load_model(), BertSentenceEncoder)


@pytest.mark.parametrize("change", [("1_Pooling/config.json", "pooling_mode_cls_token", True),
                                    ("config.json", "model_type", "mpnet"),
                                    ("config.json", "hidden_act", "gelu_new"),
                                    ("config_sentence_transformers.json", "prompts", {"query": "query: "})])
def test_a_model_of_another_shape_is_left_to_the_library(tmp_path, change):
    copy = tmp_path / "model"
    shutil.copytree(default_model_path(), copy, ignore=shutil.ignore_patterns("model.safetensors"))
    (copy / "model.safetensors").symlink_to(default_model_path() / "model.safetensors")
    assert supports(copy)
    name, key, value = change
    settings = json.loads((copy / name).read_text())
    settings[key] = value
    (copy / name).write_text(json.dumps(settings))
    assert not supports(copy)
