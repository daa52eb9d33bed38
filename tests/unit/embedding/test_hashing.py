"""The hashing fake: deterministic, normalised, shaped like the real embedder's output."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from docket.embedding.hashing import HashingEmbedder
from docket.embedding.port import Embedder


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def test_implements_the_port() -> None:
    embedder = HashingEmbedder()
    assert isinstance(embedder, Embedder)
    assert embedder.model.name == "docket/hashing"
    assert embedder.model.version == "1"
    assert embedder.model.dimension == 64


def test_same_text_same_vector_across_instances() -> None:
    # Given two independent instances
    first, second = HashingEmbedder(), HashingEmbedder()
    # When they embed the same text, as a document and as a query
    documents = first.embed_documents(["Refund policy for damaged items"])
    query = second.embed_query("Refund policy for damaged items")
    # Then the vectors are bit-identical
    assert np.array_equal(documents[0], query)


def test_stable_across_processes() -> None:
    # Python's hash() is salted per process; the fake must not depend on it
    code = (
        "from docket.embedding.hashing import HashingEmbedder;"
        "print(HashingEmbedder().embed_query('stable vectors please').tobytes().hex())"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = HashingEmbedder().embed_query("stable vectors please").tobytes().hex()
    assert run.stdout.strip() == here


@pytest.mark.parametrize("text", ["hello world", "", "   ", "!!!", "Ünïcödé 東京 42"])
def test_vectors_are_unit_float32(text: str) -> None:
    vector = HashingEmbedder(dimension=32).embed_query(text)
    assert vector.dtype == np.float32
    assert vector.shape == (32,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-6


def test_batch_shapes_and_empty_input() -> None:
    embedder = HashingEmbedder(dimension=16)
    assert embedder.embed_documents([]).shape == (0, 16)
    vectors = embedder.embed_documents(["a", "b", "c"])
    assert vectors.shape == (3, 16)
    assert vectors.dtype == np.float32


def test_shared_words_score_higher_than_unrelated_text() -> None:
    embedder = HashingEmbedder()
    query = embedder.embed_query("reset my password")
    related, unrelated = embedder.embed_documents(
        ["How to reset a forgotten password", "Quarterly revenue grew in Europe"]
    )
    assert _cosine(query, related) > _cosine(query, unrelated)


def test_case_insensitive() -> None:
    embedder = HashingEmbedder()
    assert np.array_equal(embedder.embed_query("Hello World"), embedder.embed_query("hello world"))


def test_rejects_a_bare_string_as_a_batch() -> None:
    with pytest.raises(TypeError):
        HashingEmbedder().embed_documents("not a list")
