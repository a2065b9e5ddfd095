"""A BERT sentence encoder in plain torch, for sentence-transformers models of the common shape.

The bundled all-MiniLM-L6-v2 is a BERT encoder followed by mean pooling and normalisation. Loading
it through sentence-transformers imports transformers, scikit-learn and parts of torch's compiler
(about 2.5 s of CPU before the first rule can be searched, on the app's first inspection and on
every CLI command that embeds). This module computes the same model from the same files (the
safetensors weights, the `tokenizers` tokenizer.json) with torch alone, in about 0.2 s.
`supports(path)` says whether a model directory has exactly that shape (a BERT encoder with
absolute positions and exact GELU, mean pooling, no prompts); any other model is loaded through
sentence-transformers as before. tests/test_embedding_encoder.py checks that both give the same
vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"
SHAPES = ([TRANSFORMER, POOLING], [TRANSFORMER, POOLING, NORMALIZE])


def supports(path: Path) -> bool:
    """True when the model directory is a BERT encoder + mean pooling (+ normalisation) this module computes."""
    try:
        modules = _json(path / "modules.json")
        config = _json(path / "config.json")
        pooling = _json(path / next(m["path"] for m in modules if m["type"] == POOLING) / "config.json")
        sentence = _json(path / "sentence_bert_config.json")
        prompts = _json(path / "config_sentence_transformers.json") if (path / "config_sentence_transformers.json").is_file() else {}
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        return False
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        value for key, value in pooling.items() if key.startswith("pooling_mode_") and key != "pooling_mode_mean_tokens")
    return ([m["type"] for m in modules] in SHAPES and modules[0].get("path", "") == ""
            and config.get("model_type") == "bert" and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute" and bool(mean_only)
            and pooling.get("include_prompt", True) and not sentence.get("do_lower_case")
            and not prompts.get("prompts") and not prompts.get("default_prompt_name")
            and (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file())


def _json(path: Path) -> dict | list:
    return json.loads(path.read_text(encoding="utf-8"))


class BertSentenceEncoder:
    """The model of a supported directory: `encode(texts)` -> unit-length vectors (N x d float32)."""

    def __init__(self, path: Path):
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        config = _json(path / "config.json")
        self.heads, self.eps = config["num_attention_heads"], config["layer_norm_eps"]
        self.layers = config["num_hidden_layers"]
        max_length = min(_json(path / "sentence_bert_config.json").get("max_seq_length") or 512,
                         config["max_position_embeddings"])
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.no_padding()
        self.pad_id = config.get("pad_token_id", 0)
        self.weights = {name.removeprefix("bert."): tensor.to(torch.float32)
                        for name, tensor in load_file(str(path / "model.safetensors")).items()}

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length mean-pooled embeddings, in batches of similar length (each padded to its longest)."""
        import torch

        encodings = self.tokenizer.encode_batch([str(text).strip() for text in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # similar lengths: little padding
        vectors = np.zeros((len(texts), self.weights["embeddings.word_embeddings.weight"].shape[1]), np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chosen = order[start:start + batch_size]
                vectors[chosen] = self._batch([encodings[i] for i in chosen])
        return vectors

    def _batch(self, encodings) -> np.ndarray:
        import torch
        from torch.nn import functional

        length = max(len(e.ids) for e in encodings)
        ids = torch.tensor([e.ids + [self.pad_id] * (length - len(e.ids)) for e in encodings])
        mask = torch.tensor([[1] * len(e.ids) + [0] * (length - len(e.ids)) for e in encodings])
        hidden = self._embed(ids)
        blocked = torch.zeros(mask.shape, dtype=torch.float32).masked_fill(mask == 0, torch.finfo(torch.float32).min)
        for layer in range(self.layers):
            hidden = self._layer(f"encoder.layer.{layer}.", hidden, blocked[:, None, None, :])
        weights = mask[..., None].to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return functional.normalize(pooled, p=2, dim=1).numpy()

    def _embed(self, ids):
        import torch
        from torch.nn import functional

        w = self.weights
        positions = torch.arange(ids.shape[1])
        summed = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
                  + w["embeddings.token_type_embeddings.weight"][0])
        return functional.layer_norm(summed, summed.shape[-1:], w["embeddings.LayerNorm.weight"],
                                     w["embeddings.LayerNorm.bias"], self.eps)

    def _layer(self, prefix: str, hidden, blocked):
        from torch.nn import functional

        w = self.weights

        def dense(name, x):
            return functional.linear(x, w[f"{prefix}{name}.weight"], w[f"{prefix}{name}.bias"])

        def norm(name, x):
            return functional.layer_norm(x, x.shape[-1:], w[f"{prefix}{name}.weight"], w[f"{prefix}{name}.bias"], self.eps)

        batch, length, width = hidden.shape

        def heads(x):
            return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)
        q, k, v = (heads(dense(f"attention.self.{name}", hidden)) for name in ("query", "key", "value"))
        context = functional.scaled_dot_product_attention(q, k, v, attn_mask=blocked)
        context = context.transpose(1, 2).reshape(batch, length, width)
        attended = norm("attention.output.LayerNorm", dense("attention.output.dense", context) + hidden)
        inner = functional.gelu(dense("intermediate.dense", attended))
        return norm("output.LayerNorm", dense("output.dense", inner) + attended)
