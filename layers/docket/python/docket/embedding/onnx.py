"""The local embedding model: all-MiniLM-L6-v2 exported to ONNX, run with onnxruntime.

The graph (see onnx_export.py) already applies sentence-transformers' mean pooling and L2
normalisation, so one session run turns token ids into finished vectors. onnxruntime and
tokenizers are imported when an embedder is built, not when this module is imported: the Lambda
layer does not carry onnxruntime, and handler cold starts stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from docket.embedding.onnx_export import MODEL_FILE, TOKENIZER_FILE, ModelExportError, read_manifest
from docket.embedding.port import Vectors
from docket.models import EmbeddingModelInfo

if TYPE_CHECKING:
    from docket.config import Settings

OUTPUT_NAME = "sentence_embedding"


class OnnxEmbedder:
    """Embeds texts with an exported sentence-transformers model on the CPU.

    Each call tokenizes all its texts once, sorts them by token count and cuts the sorted list
    into sub-batches by tokens, not by count: each holds as many texts as fit in ``batch_tokens``
    padded tokens (default ``batch_size`` texts of the model's full length), padded only to its
    own longest text. So a call mixing short and long texts pays for almost no padding, and short
    texts go through in larger batches; vectors come back in the caller's order.

    Safe to share between threads: the tokenizer is configured once here and afterwards only read
    (tokenizers' encode methods take a shared borrow and release the GIL), and onnxruntime's
    ``InferenceSession.run`` is thread-safe.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        batch_size: int = 32,
        threads: int = 0,
        batch_tokens: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if batch_tokens is not None and batch_tokens < 1:
            raise ValueError("batch_tokens must be at least 1")
        manifest = read_manifest(Path(model_dir))
        if manifest is None:
            raise ModelExportError(f"no exported model in {model_dir}; call ensure_exported first")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._model = EmbeddingModelInfo(
            name=manifest["name"], version=manifest["version"], dimension=manifest["dimension"]
        )
        self.max_seq_length: int = int(manifest["max_seq_length"])
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens or batch_size * self.max_seq_length
        self.export_method: str = manifest.get("export_method", "")

        tokenizer = Tokenizer.from_file(str(Path(model_dir) / TOKENIZER_FILE))
        # The shipped tokenizer.json pads and truncates to a fixed 128; we truncate at the
        # model's max_seq_length like sentence-transformers and pad per batch ourselves.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer = tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (one per core)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Idle pool threads would otherwise spin between operators, taking CPU from the other
        # threads of the process (in the local cloud: every other pipeline step).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(Path(model_dir) / MODEL_FILE),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OnnxEmbedder:
        """Export the configured model once (see ensure_exported) and load it."""
        from docket.embedding.onnx_export import ensure_exported

        model_dir = ensure_exported(
            settings.model_dir, settings.embedding_model, settings.embedding_precision
        )
        return cls(
            model_dir,
            batch_size=settings.embedding_batch_size,
            threads=settings.embedding_threads,
            batch_tokens=settings.embedding_batch_tokens,
        )

    @property
    def model(self) -> EmbeddingModelInfo:
        return self._model

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts after truncation, special tokens included (what the model sees)."""
        return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts))]

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of texts, not one string")
        dimension = self._model.dimension
        if len(texts) == 0:
            return np.empty((0, dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        order = np.argsort(-lengths, kind="stable")
        vectors = np.empty((len(texts), dimension), dtype=np.float32)
        for part in self.sub_batches(lengths[order]):
            rows = order[part]
            width = int(lengths[rows].max())
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            attention_mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, index in enumerate(rows):
                length = lengths[index]
                input_ids[row, :length] = encodings[index].ids
                attention_mask[row, :length] = 1
            vectors[rows] = self._run(input_ids, attention_mask)
        return vectors

    def sub_batches(self, sorted_lengths: np.ndarray) -> list[slice]:
        """Slices of ``sorted_lengths`` (longest first): each as long as fits in
        ``batch_tokens`` when padded to its first (longest) text, at least one text."""
        batches: list[slice] = []
        start, total = 0, len(sorted_lengths)
        while start < total:
            width = max(1, int(sorted_lengths[start]))
            stop = min(total, start + max(1, self.batch_tokens // width))
            batches.append(slice(start, stop))
            start = stop
        return batches

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text])[0]

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Any:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        return self._session.run([OUTPUT_NAME], feed)[0]
