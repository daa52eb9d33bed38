"""Indexing a BEIR corpus with the project's own chunking, embedding and index code, in-process.

Each corpus document becomes an ``ExtractedDocument`` (one page: its text; its title) and goes
through the same ``Chunker`` and ``embedding_input`` as an uploaded file, into an
``EmbeddedIndex`` in a scratch folder under one tenant. Chunks map back to corpus ids through
their ``source`` (the corpus id).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from docket.chunking import chunker_for
from docket.chunking.context import embedding_input
from docket.config import Settings
from docket.embedding.port import Embedder
from docket.evaluation.beir import BeirDocument
from docket.models import ChunkRecord, ExtractedDocument, Page, chunk_id_for, document_id_for
from docket.search.embedded import EmbeddedIndex

EVAL_TENANT = "eval"
# Texts embedded per call: the embedder sorts each call by length to pad little, so bigger is
# faster; small enough that the progress bar moves.
EMBED_BLOCK = 512

Progress = Callable[[int, int], None]  # (chunks done, chunks total)


@dataclass
class IndexedCorpus:
    index: EmbeddedIndex
    documents: int
    chunks: list[ChunkRecord]
    timings_s: dict[str, float] = field(default_factory=dict)

    def corpus_id(self, hit: Any) -> str:
        return str(hit.chunk.source)


def chunk_documents(
    documents: Iterable[tuple[str, ExtractedDocument]],
    settings: Settings,
    *,
    tenant: str = EVAL_TENANT,
    headers: bool = True,
) -> list[ChunkRecord]:
    """Chunks as the ingest path makes them from (source, extracted document) pairs, one tenant;
    ``headers=False`` drops titles and sections (the ablation)."""
    chunker = chunker_for(settings)
    chunks: list[ChunkRecord] = []
    for source, extracted in documents:
        document_id = document_id_for(tenant, source)
        seen: set[str] = set()
        for draft in chunker.chunk(extracted):
            cid = chunk_id_for(document_id, draft.text)
            if cid in seen:
                continue
            seen.add(cid)
            chunks.append(
                ChunkRecord(
                    tenant=tenant,
                    document_id=document_id,
                    chunk_id=cid,
                    ordinal=draft.ordinal,
                    text=draft.text,
                    page_start=draft.page_start,
                    page_end=draft.page_end,
                    section=draft.section if headers else None,
                    token_count=draft.token_count,
                    source=source,
                    title=extracted.title if headers else None,
                )
            )
    return chunks


def chunk_corpus(
    corpus: Iterable[BeirDocument], settings: Settings, *, headers: bool = True
) -> list[ChunkRecord]:
    """A BEIR corpus's chunks: each document one page of text under its title."""
    return chunk_documents(
        (
            (
                doc.doc_id,
                ExtractedDocument(
                    format="text",
                    title=doc.title.strip() or None,
                    pages=[Page(number=1, text=doc.text or doc.title)],
                ),
            )
            for doc in corpus
        ),
        settings,
        headers=headers,
    )


def embed_chunks(
    embedder: Embedder,
    chunks: Sequence[ChunkRecord],
    *,
    headers: bool = True,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> np.ndarray:
    """Vectors for ``chunks`` (row i for chunk i). ``cache_dir`` (development only) keeps the
    matrix keyed by the model and every input text, so a changed text or model never hits."""
    texts = [embedding_input(c, headers=headers) for c in chunks]
    cache: Path | None = None
    if cache_dir is not None:
        digest = hashlib.sha256(embedder.model.tag.encode())
        for text in texts:
            digest.update(text.encode())
            digest.update(b"\x00")
        cache = Path(cache_dir) / f"vectors-{digest.hexdigest()[:24]}.npy"
        if cache.is_file():
            if progress:
                progress(len(texts), len(texts))
            return np.load(cache)
    vectors = np.empty((len(texts), embedder.model.dimension), dtype=np.float32)
    for start in range(0, len(texts), EMBED_BLOCK):
        block = texts[start : start + EMBED_BLOCK]
        vectors[start : start + len(block)] = embedder.embed_documents(block)
        if progress:
            progress(start + len(block), len(texts))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    return vectors


def build_index(
    corpus: Sequence[BeirDocument],
    *,
    settings: Settings,
    embedder: Embedder,
    directory: Path,
    headers: bool = True,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> IndexedCorpus:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    chunks = chunk_corpus(corpus, settings, headers=headers)
    timings["chunk"] = time.perf_counter() - started
    started = time.perf_counter()
    vectors = embed_chunks(
        embedder, chunks, headers=headers, progress=progress, cache_dir=cache_dir
    )
    timings["embed"] = time.perf_counter() - started
    started = time.perf_counter()
    index = index_chunks(chunks, vectors, embedder.model, directory)
    timings["index"] = time.perf_counter() - started
    timings["total"] = sum(timings.values())
    return IndexedCorpus(index=index, documents=len(corpus), chunks=chunks, timings_s=timings)


def index_chunks(
    chunks: Sequence[ChunkRecord], vectors: np.ndarray, model: Any, directory: Path
) -> EmbeddedIndex:
    """An embedded index at ``directory`` holding ``chunks`` (committed); closed on failure."""
    index = EmbeddedIndex(Path(directory), model)
    try:
        for start in range(0, len(chunks), 2048):
            index.upsert(chunks[start : start + 2048], vectors[start : start + 2048])
        index.commit()
    except BaseException:
        index.close()
        raise
    return index
