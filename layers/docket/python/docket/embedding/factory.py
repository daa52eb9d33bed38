"""Chooses the embedding provider from settings; one instance per process and configuration."""

from __future__ import annotations

import threading
from collections.abc import Hashable

from docket.config import Settings, get_settings
from docket.embedding.port import Embedder

_lock = threading.Lock()
_embedders: dict[Hashable, Embedder] = {}


def get_embedder(settings: Settings | None = None) -> Embedder:
    """The embedder for ``settings.embedding_provider``: "onnx" (the local model) or "hash".

    The ONNX model is exported on first use (see ensure_exported) and loaded once; later calls
    with the same configuration get the same instance. The lock is held while the model loads,
    so concurrent first callers wait rather than export twice.
    """
    settings = settings or get_settings()
    key = (
        settings.embedding_provider,
        settings.embedding_model,
        str(settings.model_dir),
        settings.embedding_batch_size,
        settings.embedding_threads,
    )
    with _lock:
        embedder = _embedders.get(key)
        if embedder is None:
            embedder = _build(settings)
            _embedders[key] = embedder
        return embedder


def _build(settings: Settings) -> Embedder:
    if settings.embedding_provider == "hash":
        from docket.embedding.hashing import HashingEmbedder

        return HashingEmbedder()
    if settings.embedding_provider == "onnx":
        from docket.embedding.onnx import OnnxEmbedder

        return OnnxEmbedder.from_settings(settings)
    raise ValueError(f"unknown embedding provider {settings.embedding_provider!r}")


def reset_embedders() -> None:
    """Forget the cached embedders (tests, or after changing settings)."""
    with _lock:
        _embedders.clear()
