"""get_embedder picks the provider from settings and builds it once per process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from docket.config import Settings
from docket.embedding.factory import get_embedder, reset_embedders
from docket.embedding.hashing import HashingEmbedder


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    reset_embedders()
    yield
    reset_embedders()


def test_hash_provider_gives_the_fake_once() -> None:
    settings = Settings(embedding_provider="hash")
    first = get_embedder(settings)
    assert isinstance(first, HashingEmbedder)
    assert get_embedder(Settings(embedding_provider="hash")) is first


def test_reset_builds_a_new_instance() -> None:
    first = get_embedder(Settings(embedding_provider="hash"))
    reset_embedders()
    assert get_embedder(Settings(embedding_provider="hash")) is not first


@pytest.mark.model
def test_onnx_provider_loads_the_exported_model(minilm_dir: Path) -> None:
    from docket.embedding.onnx import OnnxEmbedder

    settings = Settings(embedding_provider="onnx", model_dir=minilm_dir, embedding_batch_size=8)
    embedder = get_embedder(settings)
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.batch_size == 8
    assert embedder.model.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.model.dimension == 384
    assert get_embedder(settings) is embedder
