"""A tiny random BERT in sentence-transformers layout, and its forward pass in NumPy.

The tiny model (hidden 8, 2 layers) exercises the exporter in well under a second; the NumPy
forward pass checks the exported graph's maths independently of onnxruntime and torch.
"""

from __future__ import annotations

import json
import shutil
from math import erf
from pathlib import Path

import numpy as np

from docket.embedding.onnx_export import BertConfig, resolve_source

TINY = BertConfig(
    hidden_size=8,
    num_layers=2,
    num_heads=2,
    intermediate_size=16,
    layer_norm_eps=1e-12,
    max_seq_length=32,
)
TINY_VOCAB = 30522  # the real tokenizer's ids stay in range


def tiny_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, i = TINY.hidden_size, TINY.intermediate_size

    def rand(*shape: int, scale: float = 0.5) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": rand(TINY_VOCAB, h),
        "embeddings.position_embeddings.weight": rand(64, h),
        "embeddings.token_type_embeddings.weight": rand(2, h),
        "embeddings.LayerNorm.weight": 1 + rand(h, scale=0.1),
        "embeddings.LayerNorm.bias": rand(h, scale=0.1),
        "embeddings.position_ids": np.arange(64, dtype=np.int64)[None, :],
        "pooler.dense.weight": rand(h, h),
        "pooler.dense.bias": rand(h),
    }
    for layer in range(TINY.num_layers):
        p = f"encoder.layer.{layer}"
        for name in ("query", "key", "value"):
            weights[f"{p}.attention.self.{name}.weight"] = rand(h, h)
            weights[f"{p}.attention.self.{name}.bias"] = rand(h, scale=0.1)
        weights[f"{p}.attention.output.dense.weight"] = rand(h, h)
        weights[f"{p}.attention.output.dense.bias"] = rand(h, scale=0.1)
        weights[f"{p}.intermediate.dense.weight"] = rand(i, h)
        weights[f"{p}.intermediate.dense.bias"] = rand(i, scale=0.1)
        weights[f"{p}.output.dense.weight"] = rand(h, i)
        weights[f"{p}.output.dense.bias"] = rand(h, scale=0.1)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{p}.{norm}.weight"] = 1 + rand(h, scale=0.1)
            weights[f"{p}.{norm}.bias"] = rand(h, scale=0.1)
    return weights


def write_tiny_model(directory: Path, seed: int = 0) -> Path:
    """A sentence-transformers style model folder with random weights."""
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file(tiny_weights(seed), str(directory / "model.safetensors"))
    config = {
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_size": TINY.hidden_size,
        "num_hidden_layers": TINY.num_layers,
        "num_attention_heads": TINY.num_heads,
        "intermediate_size": TINY.intermediate_size,
        "layer_norm_eps": TINY.layer_norm_eps,
        "max_position_embeddings": 64,
        "vocab_size": TINY_VOCAB,
    }
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": TINY.max_seq_length})
    )
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_mean_tokens": True})
    )
    try:
        packaged = resolve_source()
    except Exception:  # no packaged model: a placeholder, the export only copies the file
        (directory / "tokenizer.json").write_text("{}")
    else:
        shutil.copyfile(packaged / "tokenizer.json", directory / "tokenizer.json")
    return directory


def numpy_sentence_embedding(
    weights: dict[str, np.ndarray], input_ids: np.ndarray, attention_mask: np.ndarray
) -> np.ndarray:
    """BERT forward pass + sentence-transformers mean pooling + normalise, in float64 NumPy."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    cfg = TINY
    batch, seq = input_ids.shape

    def layer_norm(x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + cfg.layer_norm_eps) * w[f"{prefix}.weight"] + w[
            f"{prefix}.bias"
        ]

    def linear(x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ w[f"{prefix}.weight"].T + w[f"{prefix}.bias"]

    gelu = np.vectorize(lambda v: 0.5 * v * (1.0 + erf(v / np.sqrt(2.0))))
    x = (
        w["embeddings.word_embeddings.weight"][input_ids]
        + w["embeddings.position_embeddings.weight"][:seq]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, "embeddings.LayerNorm")
    bias = (1.0 - attention_mask[:, None, None, :]) * -10000.0
    for layer in range(cfg.num_layers):
        p = f"encoder.layer.{layer}"

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, seq, cfg.num_heads, cfg.head_size).transpose(0, 2, 1, 3)

        q, k, v = (split(linear(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(cfg.head_size) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, cfg.hidden_size)
        x = layer_norm(
            linear(context, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm"
        )
        ffn = linear(gelu(linear(x, f"{p}.intermediate.dense")), f"{p}.output.dense")
        x = layer_norm(ffn + x, f"{p}.output.LayerNorm")
    mask = attention_mask[:, :, None].astype(np.float64)
    pooled = (x * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
