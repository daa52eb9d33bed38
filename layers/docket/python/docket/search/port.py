"""The search index port. The embedded index (tantivy + NumPy) and OpenSearch both implement it,
and both pass tests/unit/search/test_index_contract.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from docket.embedding.port import Vectors
from docket.models import ChunkRecord, EmbeddingModelInfo, SearchFilter, SearchHit
from docket.search.fusion import TermMatches


class SearchIndex(Protocol):
    @property
    def model(self) -> EmbeddingModelInfo:
        """The embedding model whose vectors this index holds."""
        ...

    def upsert(self, chunks: Sequence[ChunkRecord], vectors: Vectors) -> None:
        """Insert or replace chunks by chunk_id (vectors row i belongs to chunks[i])."""
        ...

    def update_metadata(self, chunks: Sequence[ChunkRecord]) -> int:
        """Replace non-text fields (ACL groups, ordinal, pages), keeping stored vectors.

        Returns how many of the chunks were found and updated."""
        ...

    def delete_chunks(self, tenant: str, chunk_ids: Sequence[str]) -> int: ...

    def delete_document(self, tenant: str, document_id: str) -> int: ...

    def count_document(self, tenant: str, document_id: str) -> int: ...

    def chunk_keys(self) -> set[tuple[str, str]]:
        """Every (tenant, chunk_id) the index holds as of the last commit: a rebuild's parity
        check against the Chunks table."""
        ...

    def drop(self) -> None:
        """Delete the whole index and its storage (an aborted or expired generation); the
        object is closed afterwards."""
        ...

    def search_bm25(self, query: str, flt: SearchFilter, k: int) -> list[SearchHit]: ...

    def search_knn(self, vector: Vectors, flt: SearchFilter, k: int) -> list[SearchHit]: ...

    def query_term_matches(self, query: str, hits: Sequence[SearchHit]) -> TermMatches:
        """The query's analysed terms with their IDF (terms the index holds), and which of them
        each of ``hits`` (from ``search_bm25``) contains: input to coordination matching."""
        ...

    def commit(self) -> None:
        """Make writes durable and visible to searches."""
        ...

    def tuned_fusion(self) -> dict[str, Any] | None:
        """The fusion parameters fitted for this index on its owner's golden set
        (``docket eval tune``), as stored with it; None when it was never tuned."""
        ...

    def store_tuned_fusion(self, tuned: dict[str, Any] | None) -> None:
        """Keep ``tuned`` with the index (None forgets it): the embedded index's manifest,
        OpenSearch's ``_meta``. The query path reads it when it builds its retriever."""
        ...

    def close(self) -> None: ...
