"""OnnxEmbedder on the real model: batching, order, normalisation, truncation, threads."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from docket.embedding.port import Embedder

pytestmark = pytest.mark.model

TEXTS = [
    "What is the capital of France?",
    "Paris",
    "The invoice #INV-2024-00417 totals $1,234.56.",
    "",
    "Ünïcödé café 東京 🚀",
    "A medium length sentence about vector search and BM25 fusion in a serverless backend.",
    " ".join(f"word{i}" for i in range(400)),  # truncated at 256 tokens
    "short",
    "Vitamin D supplementation and fracture risk in older adults: a randomized trial.",
    "yes",
]


def test_implements_the_port(minilm, minilm_dir: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads((minilm_dir / "manifest.json").read_text())
    assert isinstance(minilm, Embedder)
    assert minilm.model.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.model.dimension == 384
    assert minilm.model.version == manifest["version"] == manifest["weights_sha256"][:12]


def test_the_export_is_fused_by_onnxruntime(minilm_dir: Path) -> None:
    manifest = json.loads((minilm_dir / "manifest.json").read_text())
    assert manifest["export_method"] == "onnx.helper+ort-transformers-optimizer"
    assert manifest["fused_operators"]["Attention"] == 6


def test_vectors_are_unit_float32(minilm) -> None:  # type: ignore[no-untyped-def]
    vectors = minilm.embed_documents(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = minilm.embed_query("capital of France")
    assert query.shape == (384,)
    assert query.dtype == np.float32


def test_empty_input(minilm) -> None:  # type: ignore[no-untyped-def]
    vectors = minilm.embed_documents([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_rejects_a_bare_string_as_a_batch(minilm) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError):
        minilm.embed_documents("not a list")


def test_batching_preserves_order_and_values(minilm) -> None:  # type: ignore[no-untyped-def]
    # Given each text embedded alone
    alone = np.stack([minilm.embed_query(text) for text in TEXTS])
    # When the same texts are embedded shuffled, in one call spanning several batches of 4
    order = list(range(len(TEXTS)))
    random.Random(5).shuffle(order)
    shuffled = minilm.embed_documents([TEXTS[i] for i in order])
    # Then each row is the vector of the text at that position
    np.testing.assert_allclose(shuffled, alone[order], atol=1e-5)


def test_pads_each_batch_only_to_its_longest_text(minilm, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    widths: list[tuple[int, int]] = []
    run = minilm._run

    def spy(input_ids: np.ndarray, attention_mask: np.ndarray):  # type: ignore[no-untyped-def]
        widths.append(input_ids.shape)
        assert attention_mask[:, -1].any()  # no all-padding column: padded to the batch longest
        return run(input_ids, attention_mask)

    monkeypatch.setattr(minilm, "_run", spy)
    short_texts = ["tiny", "a short one", "two words", "x", "a bit longer than the others here"]
    minilm.embed_documents([*short_texts, TEXTS[6]])
    # the long text lands in its own bucket (sorted by length); the rest stay narrow
    assert widths[0] == (4, 256)
    assert widths[1][0] == 2
    assert widths[1][1] < 16


def test_truncates_at_256_tokens(minilm) -> None:  # type: ignore[no-untyped-def]
    long_text = " ".join(f"term{i}" for i in range(600))
    assert minilm.count_tokens([long_text]) == [256]
    a, b = minilm.embed_documents([long_text, long_text + " and many more words at the end"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_concurrent_calls_agree_with_sequential_ones(minilm) -> None:  # type: ignore[no-untyped-def]
    batches = [TEXTS[i:] + TEXTS[:i] for i in range(8)]
    sequential = [minilm.embed_documents(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(minilm.embed_documents, batches))
    for got, expected in zip(concurrent, sequential, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_similar_texts_are_closer(minilm) -> None:  # type: ignore[no-untyped-def]
    query = minilm.embed_query("How do I change my password?")
    related, unrelated = minilm.embed_documents(
        ["Steps to reset a forgotten password", "Quarterly revenue grew in Europe"]
    )
    assert float(query @ related) > float(query @ unrelated) + 0.2


def test_importing_the_module_does_not_load_onnxruntime() -> None:
    code = (
        "import sys, docket.embedding.onnx, docket.embedding.factory;"
        "print('onnxruntime' in sys.modules, 'tokenizers' in sys.modules, 'onnx' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "False", "False"]


@pytest.mark.parametrize("budget", [1, 40, 300, 100_000])
def test_token_budget_batches_give_the_same_vectors_in_order(
    minilm, minilm_dir: Path, budget: int
) -> None:  # type: ignore[no-untyped-def]
    from docket.embedding.onnx import OnnxEmbedder

    # Given the texts embedded one call per text, and an embedder batching by a token budget
    alone = np.stack([minilm.embed_query(t) for t in TEXTS])
    embedder = OnnxEmbedder(minilm_dir, batch_size=4, batch_tokens=budget)
    shapes: list[tuple[int, int]] = []
    run = embedder._run

    def spy(input_ids: np.ndarray, attention_mask: np.ndarray):  # type: ignore[no-untyped-def]
        shapes.append(input_ids.shape)
        return run(input_ids, attention_mask)

    embedder._run = spy  # type: ignore[method-assign]
    # When they are embedded shuffled in one call
    order = list(range(len(TEXTS)))
    random.Random(budget).shuffle(order)
    vectors = embedder.embed_documents([TEXTS[i] for i in order])
    # Then every row is its own text's vector, whatever the batches were
    np.testing.assert_allclose(vectors, alone[order], atol=1e-5)
    # and no model call went over the budget, except a single text that is longer than it
    assert sum(rows for rows, _ in shapes) == len(TEXTS)
    assert all(rows * width <= budget or rows == 1 for rows, width in shapes)
    if budget == 100_000:
        assert len(shapes) == 1  # everything fits in one call
    if budget == 300:
        # short texts travel in larger batches than the count-based batch size of 4
        assert max(rows for rows, _ in shapes) > 4


def test_default_token_budget_is_batch_size_full_length_texts(minilm) -> None:  # type: ignore[no-untyped-def]
    assert minilm.batch_tokens == 4 * 256
    assert minilm.sub_batches(np.array([256, 256, 256, 256, 256, 10])) == [slice(0, 4), slice(4, 6)]
