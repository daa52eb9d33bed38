"""The embedded search index: BM25 with tantivy and exact cosine k-NN with NumPy, on local disk.

It is the local cloud's stand-in for OpenSearch and implements the same port (search/port.py).

On disk, one directory per index::

    manifest.json   format and embedding model (name, version, dimension), written once; the
                    fusion parameters tuned for the index (``tuned_fusion``) are added to it
    LOCK            flock()ed by the one process that owns the index
    chunks.sqlite   the source of truth: one row per row number (tenant, chunk id, document,
                    source, ACL groups, the full ChunkRecord JSON, a live flag), plus the commit
                    generation and the next row number
    vectors.f32     float32 matrix, row-major, one row per row number; append-only, preallocated
                    and grown by doubling (a sparse file), read through a memory map
    tantivy/        the BM25 index of live rows; each document carries its row number (fast field)
    bm25.json       the generation and analyzer fingerprint tantivy was last committed at

Rows are never rewritten: an upsert or a metadata update appends a new row and marks the old
one dead (the tombstone: ``live = 0``), so a search that holds the previous snapshot keeps
reading consistent data while the writer works. ``commit`` makes writes durable (vectors
fdatasync, SQLite commit, tantivy commit) and then swaps in a new immutable snapshot (tantivy
searcher + row metadata); a search takes that snapshot once and never sees uncommitted writes.
Should the process die between the SQLite and the tantivy commit, the next open sees the
generations differ and rebuilds BM25 from SQLite.

Concurrency: one writer at a time (a lock), any number of concurrent searching threads, one
process per index directory (an exclusive flock, and tantivy's own writer lock behind it).
Dead rows stay on disk (SQLite and vectors.f32) until the index is rebuilt, for example by the
re-embed flow; a chunk costs about 4 x dimension bytes of vectors per version.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from docket.chunking.context import contextual_header
from docket.embedding.port import Vectors
from docket.errors import IndexUnavailable, ModelMismatch
from docket.models import ChunkRecord, EmbeddingModelInfo, SearchFilter, SearchHit
from docket.search.analysis import Bm25Settings, build_analyzer
from docket.search.fusion import TermMatches
from docket.search.rowtable import FrozenRows, RowArray, RowTable

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
ANALYZER_NAME = "docket_en"
MAX_QUERY_TERMS = 1024
# k-NN scoring: gather the matching rows below this share of all rows, else scan them all
_GATHER_SHARE = 0.5
_BLOCK_ROWS = 2048
_INITIAL_ROWS = 1024
_WRITE_ERRORS = (OSError, sqlite3.Error, ValueError)


def _key(tenant: str, chunk_id: str) -> str:
    """A chunk's term in tantivy's ``key`` field ("/" never occurs in a tenant id)."""
    return f"{tenant}/{chunk_id}"


@dataclass(frozen=True)
class _Snapshot:
    """What one search reads: one commit's tantivy searcher, vectors and row metadata."""

    generation: int
    searcher: Any  # tantivy.Searcher
    vectors: npt.NDArray[np.float32]  # (rows.count, dimension)
    rows: FrozenRows


class _VectorFile:
    """vectors.f32: written with pwrite at the end, read through a read-only memory map."""

    def __init__(self, path: Path, dimension: int, rows: int) -> None:
        self._path = path
        self._dimension = dimension
        self._row_bytes = 4 * dimension
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        capacity = os.fstat(self._fd).st_size // self._row_bytes
        if capacity < max(rows, _INITIAL_ROWS):
            capacity = max(rows, _INITIAL_ROWS)
            os.ftruncate(self._fd, capacity * self._row_bytes)
        self._map(capacity)

    def _map(self, capacity: int) -> None:
        mapped = np.memmap(self._path, np.float32, mode="r", shape=(capacity, self._dimension))
        self.matrix: npt.NDArray[np.float32] = mapped.view(np.ndarray)
        self._capacity = capacity

    def write(self, start: int, block: npt.NDArray[np.float32]) -> None:
        end = start + len(block)
        if end > self._capacity:
            capacity = max(end, 2 * self._capacity)
            os.ftruncate(self._fd, capacity * self._row_bytes)  # sparse until written
            self._map(capacity)  # snapshots keep the old mapping, still valid
        data = memoryview(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        offset = start * self._row_bytes
        while data:  # pwrite may write less than asked
            written = os.pwrite(self._fd, data, offset)
            data, offset = data[written:], offset + written

    def read(self, rows: Sequence[int]) -> npt.NDArray[np.float32]:
        return np.take(self.matrix, np.asarray(rows, dtype=np.int64), axis=0)

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


class EmbeddedIndex:
    """SearchIndex on local disk (see the module docstring for layout and guarantees).

    Reads (``search_*``, ``count_document``) see the last commit. ``close()`` discards writes
    that were not committed. ``bm25`` picks the analyzer and field options (defaults: see
    search/analysis.py); changing the analyzer rebuilds the BM25 index on open.
    """

    def __init__(
        self,
        path: Path,
        model: EmbeddingModelInfo,
        *,
        bm25: Bm25Settings | None = None,
        writer_heap_bytes: int = 96_000_000,
        writer_threads: int | None = None,
    ) -> None:
        self._path = Path(path)
        self._model = model
        self._bm25 = bm25 or Bm25Settings()
        self._analyzer = build_analyzer(self._bm25)
        self._lock = threading.RLock()
        self._closed = False
        self._broken: BaseException | None = None
        self._discarded: str | None = None
        self._dirty = False
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._lock_fd: int | None = None
        self._db: sqlite3.Connection | None = None
        self._vectors: _VectorFile | None = None
        self._writer: Any = None
        self._snapshot: _Snapshot | None = None
        self._generation = 0
        self._next_row = 0
        self._rows = RowTable()
        threads = writer_threads or max(1, min(4, os.cpu_count() or 1))
        try:
            self._path.mkdir(parents=True, exist_ok=True)
            self._acquire_process_lock()
            self._check_or_write_manifest()
            self._db = self._connect()
            self._init_schema()
            self._vectors = _VectorFile(self._path / "vectors.f32", model.dimension, self._next_row)
            self._load_rows()
            self._open_tantivy(writer_heap_bytes, threads)
            self._snapshot = self._take_snapshot()
        except (ModelMismatch, IndexUnavailable):
            self._release_resources()
            raise
        except _WRITE_ERRORS as exc:
            self._release_resources()
            raise IndexUnavailable(f"cannot open the index at {self._path}: {exc}") from exc
        logger.info(
            "opened embedded index",
            extra={"path": str(self._path), "model": model.tag, "chunks": len(self._rows)},
        )

    # --- the port -------------------------------------------------------------------------------

    @property
    def model(self) -> EmbeddingModelInfo:
        return self._model

    @property
    def path(self) -> Path:
        return self._path

    def upsert(self, chunks: Sequence[ChunkRecord], vectors: Vectors) -> None:
        matrix = self._validate_vectors(vectors, len(chunks))
        if not chunks:
            return
        # the last occurrence of a chunk id wins, like a sequence of single upserts
        last = {(c.tenant, c.chunk_id): i for i, c in enumerate(chunks)}
        keep = sorted(last.values())
        with self._writing("upsert"):
            self._append([chunks[i] for i in keep], matrix[keep])

    def update_metadata(self, chunks: Sequence[ChunkRecord]) -> int:
        """Replace everything but the text (ACL groups, ordinal, pages, title...) keeping vectors.

        Chunks the index does not hold are skipped; the stored text and token count are kept.
        """
        if not chunks:
            return 0
        with self._writing("update_metadata"):
            updates: dict[int, ChunkRecord] = {}
            for chunk in chunks:
                row = self._rows.row_of(chunk.tenant, chunk.chunk_id)
                if row is not None:
                    updates[row] = chunk
            if not updates:
                return 0
            rows = list(updates)
            stored = dict(_select_records(self._writer_db(), rows))  # sees uncommitted rows
            records = []
            for row, chunk in updates.items():
                old = ChunkRecord.model_validate_json(stored[row])
                records.append(
                    chunk.model_copy(update={"text": old.text, "token_count": old.token_count})
                )
            assert self._vectors is not None
            self._append(records, self._vectors.read(rows))
            return len(records)

    def delete_chunks(self, tenant: str, chunk_ids: Sequence[str]) -> int:
        if not chunk_ids:
            return 0
        with self._writing("delete_chunks"):
            return self._delete(tenant, set(chunk_ids))

    def delete_document(self, tenant: str, document_id: str) -> int:
        with self._writing("delete_document"):
            return self._delete(tenant, set(self._rows.document_chunks(tenant, document_id)))

    def count_document(self, tenant: str, document_id: str) -> int:
        """Live chunks of a document as of the last commit."""
        return self._current().rows.count_document(tenant, document_id)

    def chunk_keys(self) -> set[tuple[str, str]]:
        self._current()  # closed → IndexUnavailable
        rows = self._reader().execute("SELECT tenant, chunk_id FROM chunks WHERE live = 1")
        return {(str(t), str(c)) for t, c in rows}

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self._path, ignore_errors=True)

    def search_bm25(self, query: str, flt: SearchFilter, k: int) -> list[SearchHit]:
        from tantivy import Occur, Query

        snap = self._current()
        if k <= 0 or snap.rows.count == 0:
            return []
        text_query = self._text_query(query)
        filters = self._filter_queries(flt)
        if text_query is None or filters is None:
            return []
        clauses = [(Occur.Must, text_query)]
        clauses += [(Occur.Must, Query.const_score_query(f, 0.0)) for f in filters]
        try:
            limit = min(k, snap.rows.count)  # tantivy sizes its top-k heap by the limit
            result = snap.searcher.search(Query.boolean_query(clauses), limit=limit, count=False)
            addresses = [address for _, address in result.hits]
            rows = snap.searcher.fast_field_values("row", addresses) if addresses else []
        except ValueError as exc:
            raise IndexUnavailable(f"BM25 search failed on {self._path}: {exc}") from exc
        live = snap.rows.live
        scored = [
            (int(row), float(score))
            for (score, _), row in zip(result.hits, rows, strict=True)
            if row is not None and row < len(live) and live[row]
        ]
        scored.sort(key=lambda item: (-item[1], item[0]))  # equal scores: the older row first
        return self._hits(scored, "bm25")

    def query_term_matches(self, query: str, hits: Sequence[SearchHit]) -> TermMatches:
        """IDF as tantivy's BM25 computes it, ``ln(1 + (N - df + 0.5) / (df + 0.5))``, over the
        last commit; a hit's terms come from analysing what was indexed for it (header + text)."""
        snap = self._current()
        terms = list(dict.fromkeys(self._analyzer.analyze(query)))[:MAX_QUERY_TERMS]
        total = snap.searcher.num_docs
        weights: dict[str, float] = {}
        for term in terms:
            df = snap.searcher.doc_freq("body", term)
            if self._bm25.fields != "single":
                df = max(df, snap.searcher.doc_freq("title", term))
            if df > 0:
                weights[term] = math.log(1.0 + (total - df + 0.5) / (df + 0.5))
        wanted = set(weights)
        matched = []
        for hit in hits:
            header = contextual_header(hit.chunk.title, hit.chunk.section, hit.chunk.context)
            found = set(self._analyzer.analyze(f"{header}\n{hit.chunk.text}")) if wanted else set()
            matched.append(frozenset(wanted & found))
        return TermMatches(weights=weights, matched=matched)

    def search_knn(self, vector: Vectors, flt: SearchFilter, k: int) -> list[SearchHit]:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self._model.dimension:
            raise ModelMismatch(
                f"query vector has dimension {query.shape[0]}, the index at {self._path} holds "
                f"{self._model.tag} vectors of dimension {self._model.dimension}"
            )
        if not np.isfinite(query).all():
            raise ValueError("query vector contains NaN or infinity")
        snap = self._current()
        if k <= 0:
            return []
        rows = snap.rows.matching(flt)
        if rows.size == 0:
            return []
        norm = float(np.linalg.norm(query))
        if norm > 0:
            query = query / norm
        scores = _dot_rows(snap.vectors, rows, query)
        take = min(k, rows.size)
        top = np.argpartition(-scores, take - 1)[:take] if take < rows.size else np.arange(take)
        order = top[np.lexsort((rows[top], -scores[top]))]  # equal scores: the older row first
        return self._hits([(int(rows[i]), float(scores[i])) for i in order], "knn")

    def tuned_fusion(self) -> dict[str, Any] | None:
        data = json.loads((self._path / "manifest.json").read_text())
        tuned = data.get("tuned_fusion")
        return tuned if isinstance(tuned, dict) else None

    def store_tuned_fusion(self, tuned: dict[str, Any] | None) -> None:
        with self._lock:
            if self._closed:
                raise IndexUnavailable(f"the index at {self._path} is closed")
            manifest = self._path / "manifest.json"
            data = json.loads(manifest.read_text())
            if tuned is None:
                data.pop("tuned_fusion", None)
            else:
                data["tuned_fusion"] = tuned
            _write_atomically(manifest, json.dumps(data, indent=2).encode())

    def commit(self) -> None:
        with self._writing("commit", begin=False):
            if not self._dirty:
                return
            assert self._vectors is not None
            db = self._writer_db()
            generation = self._generation + 1
            self._vectors.sync()
            db.executemany(
                "INSERT OR REPLACE INTO state(name, value) VALUES (?, ?)",
                [("generation", generation), ("next_row", self._rows.length)],
            )
            db.execute("COMMIT")
            try:
                self._writer.commit()
                self._write_bm25_state(generation)
            except _WRITE_ERRORS as exc:
                # SQLite holds the new generation, BM25 does not: reopening rebuilds BM25.
                self._broken = exc
                raise IndexUnavailable(f"commit failed on {self._path}: {exc}") from exc
            self._generation = generation
            self._dirty = False
            self._snapshot = self._take_snapshot()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._snapshot = None
            self._release_resources()

    def __enter__(self) -> EmbeddedIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def matching_rows(self, flt: SearchFilter) -> RowArray:
        """Row numbers the filter lets through as of the last commit (the k-NN candidates)."""
        return self._current().rows.matching(flt)

    # --- BM25 queries ---------------------------------------------------------------------------

    def _text_query(self, text: str) -> Any:
        """Term queries from the analyzed text: user text never reaches a query parser.

        A term repeated in the query weighs its count, as Lucene's duplicate clauses do.
        """
        from tantivy import Occur, Query

        counts = Counter(self._analyzer.analyze(text))
        if not counts:
            return None
        terms = list(counts.items())[:MAX_QUERY_TERMS]

        def field_query(field: str) -> Any:
            clauses = []
            for term, count in terms:
                q = Query.term_query(self._schema, field, term, index_option="freq")
                boosted = Query.boost_query(q, float(count)) if count > 1 else q
                clauses.append((Occur.Should, boosted))
            return Query.boolean_query(clauses)

        body = field_query("body")
        if self._bm25.fields == "single":
            return body
        title = field_query("title")
        if self._bm25.title_boost != 1.0:
            title = Query.boost_query(title, self._bm25.title_boost)
        if self._bm25.fields == "dismax":
            return Query.disjunction_max_query([title, body], tie_breaker=self._bm25.tie_breaker)
        return Query.boolean_query([(Occur.Should, title), (Occur.Should, body)])

    def _filter_queries(self, flt: SearchFilter) -> list[Any] | None:
        """Tenant, ACL and optional document/source clauses; None when nothing can match.

        Public chunks carry ``public=true`` (a field of its own, so no group name can pose as
        the public marker); restricted ones carry their groups in ``acl``.
        """
        from tantivy import Occur, Query

        schema = self._schema
        public = Query.term_query(schema, "public", True)
        if flt.groups:
            groups = Query.term_set_query(schema, "acl", sorted(flt.groups))
            acl = Query.boolean_query([(Occur.Should, public), (Occur.Should, groups)])
        else:
            acl = public
        filters = [Query.term_query(schema, "tenant", flt.tenant), acl]
        for field, values in (("document_id", flt.document_ids), ("source", flt.sources)):
            if values is not None:
                if not values:
                    return None
                filters.append(Query.term_set_query(schema, field, sorted(values)))
        return filters

    # --- hits -----------------------------------------------------------------------------------

    def _hits(self, scored: list[tuple[int, float]], retriever: str) -> list[SearchHit]:
        if not scored:
            return []
        try:
            found = dict(_select_records(self._reader(), [row for row, _ in scored]))
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"cannot read chunk records on {self._path}: {exc}") from exc
        hits: list[SearchHit] = []
        for row, score in scored:
            raw = found.get(row)
            if raw is None:  # rows are never removed while the index is open; be safe anyway
                continue
            hits.append(
                SearchHit(
                    chunk=ChunkRecord.model_validate_json(raw),
                    score=score,
                    retriever=retriever,
                    rank=len(hits) + 1,
                )
            )
        return hits

    def _reader(self) -> sqlite3.Connection:
        """One SQLite connection per searching thread (WAL: readers never wait for the writer)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _current(self) -> _Snapshot:
        snap = self._snapshot
        if snap is None:
            raise IndexUnavailable(f"the index at {self._path} is closed")
        return snap

    def _take_snapshot(self) -> _Snapshot:
        assert self._vectors is not None
        self._tantivy.reload()
        rows = self._rows.freeze()
        return _Snapshot(
            generation=self._generation,
            searcher=self._tantivy.searcher(),
            vectors=self._vectors.matrix[: rows.count],
            rows=rows,
        )

    # --- writes ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, operation: str, *, begin: bool = True) -> Iterator[None]:
        """One writer at a time. A write that fails half-way rolls the writer back to the last
        commit; the next ``commit`` then raises too, so a caller never believes that writes
        made before the failure were kept. Searches go on from the last commit throughout."""
        with self._lock:
            if self._closed:
                raise IndexUnavailable(f"the index at {self._path} is closed")
            if self._broken is not None:
                raise IndexUnavailable(
                    f"the index at {self._path} could not recover from an earlier failure "
                    f"({self._broken}); reopen it"
                )
            if operation == "commit" and self._discarded is not None:
                reason, self._discarded = self._discarded, None
                raise IndexUnavailable(
                    f"writes since the last commit were discarded after a failure ({reason})"
                )
            try:
                db = self._writer_db()
                if begin and not db.in_transaction:
                    db.execute("BEGIN IMMEDIATE")
                yield
            except _WRITE_ERRORS as exc:
                self._discard_uncommitted(exc)
                raise IndexUnavailable(f"{operation} failed on {self._path}: {exc}") from exc

    def _discard_uncommitted(self, cause: BaseException) -> None:
        logger.error("discarding uncommitted writes", extra={"path": str(self._path)})
        self._discarded = str(cause)
        try:
            self._writer.rollback()
            db = self._writer_db()
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._read_state()
            self._load_rows()
        except Exception as exc:  # the on-disk state is unknown: only reopening can tell
            self._broken = exc

    def _writer_db(self) -> sqlite3.Connection:
        assert self._db is not None
        return self._db

    def _validate_vectors(self, vectors: Vectors, count: int) -> npt.NDArray[np.float32]:
        matrix = np.asarray(vectors, dtype=np.float32)
        if count == 0 and matrix.size == 0:
            return matrix.reshape(0, self._model.dimension)
        if matrix.ndim == 1 and count == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or matrix.shape[0] != count:
            raise ValueError(f"expected {count} vectors, got an array of shape {matrix.shape}")
        if matrix.shape[1] != self._model.dimension:
            raise ModelMismatch(
                f"vectors have dimension {matrix.shape[1]}, the index at {self._path} holds "
                f"{self._model.tag} vectors of dimension {self._model.dimension}"
            )
        if not np.isfinite(matrix).all():
            raise ValueError("vectors contain NaN or infinity")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return np.ascontiguousarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)

    def _append(self, records: list[ChunkRecord], matrix: npt.NDArray[np.float32]) -> None:
        """Write records as new rows, killing the rows they replace (caller holds the lock)."""
        assert self._vectors is not None
        self._vectors.write(self._rows.length, matrix)
        replaced: list[int] = []
        inserts: list[tuple[Any, ...]] = []
        for record in records:
            old = self._rows.row_of(record.tenant, record.chunk_id)
            if old is not None:
                replaced.append(old)
                self._rows.kill(old, record.tenant, record.chunk_id)
                self._writer.delete_documents_by_term("key", _key(record.tenant, record.chunk_id))
            groups = sorted(set(record.acl_groups))
            row = self._rows.append(
                record.tenant, record.chunk_id, record.document_id, record.source, groups
            )
            inserts.append(
                (
                    row,
                    record.tenant,
                    record.chunk_id,
                    record.document_id,
                    record.source,
                    json.dumps(groups),
                    record.model_dump_json(),
                )
            )
            self._writer.add_document(self._tantivy_document(row, record, groups))
        db = self._writer_db()
        db.executemany("UPDATE chunks SET live = 0 WHERE row = ?", [(r,) for r in replaced])
        db.executemany(
            "INSERT INTO chunks(row, tenant, chunk_id, document_id, source, acl_groups, record)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            inserts,
        )
        self._dirty = True

    def _delete(self, tenant: str, chunk_ids: set[str]) -> int:
        rows: list[int] = []
        for chunk_id in sorted(chunk_ids):
            row = self._rows.row_of(tenant, chunk_id)
            if row is None:
                continue
            rows.append(row)
            self._rows.kill(row, tenant, chunk_id)
            self._writer.delete_documents_by_term("key", _key(tenant, chunk_id))
        if rows:
            self._writer_db().executemany(
                "UPDATE chunks SET live = 0 WHERE row = ?", [(r,) for r in rows]
            )
            self._dirty = True
        return len(rows)

    def _tantivy_document(self, row: int, record: ChunkRecord, groups: list[str]) -> Any:
        import tantivy

        doc = tantivy.Document()
        doc.add_unsigned("row", row)
        doc.add_text("key", _key(record.tenant, record.chunk_id))
        doc.add_text("tenant", record.tenant)
        doc.add_text("document_id", record.document_id)
        doc.add_text("source", record.source)
        doc.add_boolean("public", not groups)
        for group in groups:
            doc.add_text("acl", group)
        heading = contextual_header(record.title, record.section, record.context)
        if self._bm25.fields == "single":
            doc.add_text("body", f"{heading}\n{record.text}" if heading else record.text)
        else:
            doc.add_text("title", heading)
            doc.add_text("body", record.text)
        return doc

    # --- opening --------------------------------------------------------------------------------

    def _acquire_process_lock(self) -> None:
        fd = os.open(self._path / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise IndexUnavailable(
                f"the index at {self._path} is open elsewhere (one process, one EmbeddedIndex "
                "per directory)"
            ) from exc
        self._lock_fd = fd

    def _check_or_write_manifest(self) -> None:
        manifest = self._path / "manifest.json"
        if manifest.exists():
            data = json.loads(manifest.read_text())
            if data.get("format") != FORMAT_VERSION:
                raise IndexUnavailable(
                    f"the index at {self._path} has format {data.get('format')!r}, this code "
                    f"reads format {FORMAT_VERSION}"
                )
            stored = EmbeddingModelInfo.model_validate(data["model"])
            mine = self._model
            if (stored.name, stored.version, stored.dimension) != (
                mine.name,
                mine.version,
                mine.dimension,
            ):
                hint = ""
                if (
                    stored.name == mine.name
                    and stored.version.split("-")[0] == (mine.version.split("-")[0])
                ):
                    precision = "int8" if stored.version.endswith("-int8") else "fp32"
                    hint = f" (same weights: DOCKET_EMBEDDING_PRECISION={precision} opens it)"
                raise ModelMismatch(
                    f"the index at {self._path} holds {stored.tag} vectors (dimension "
                    f"{stored.dimension}); it cannot be opened for {mine.tag} (dimension "
                    f"{mine.dimension}): re-embed into a new index or use the index's "
                    f"model{hint}"
                )
            return
        if any(self._path.glob("chunks.sqlite*")) or (self._path / "vectors.f32").exists():
            raise IndexUnavailable(f"the index at {self._path} has data but no manifest.json")
        manifest_data = {"format": FORMAT_VERSION, "model": self._model.model_dump()}
        _write_atomically(manifest, json.dumps(manifest_data, indent=2).encode())

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path / "chunks.sqlite", isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _init_schema(self) -> None:
        self._writer_db().executescript(
            """
            CREATE TABLE IF NOT EXISTS chunks (
                row INTEGER PRIMARY KEY,
                tenant TEXT NOT NULL,
                chunk_id TEXT NOT NULL,
                document_id TEXT NOT NULL,
                source TEXT NOT NULL,
                acl_groups TEXT NOT NULL,
                record TEXT NOT NULL,
                live INTEGER NOT NULL DEFAULT 1
            );
            CREATE UNIQUE INDEX IF NOT EXISTS chunks_by_key ON chunks(tenant, chunk_id)
                WHERE live = 1;
            CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            """
        )
        self._read_state()

    def _read_state(self) -> None:
        state = dict(self._writer_db().execute("SELECT name, value FROM state").fetchall())
        self._generation = int(state.get("generation", 0))
        self._next_row = int(state.get("next_row", 0))

    def _load_rows(self) -> None:
        """Row metadata of the last commit, from SQLite."""
        rows = RowTable(capacity=max(self._next_row, _INITIAL_ROWS))
        cursor = self._writer_db().execute(
            "SELECT row, tenant, chunk_id, document_id, source, acl_groups FROM chunks"
            " WHERE live = 1 ORDER BY row"
        )
        for row, tenant, chunk_id, document_id, source, acl_groups in cursor:
            if row > rows.length:  # row numbers that died before the last commit
                rows.append_dead(row - rows.length)
            groups = json.loads(acl_groups) if acl_groups != "[]" else ()
            rows.append(tenant, chunk_id, document_id, source, groups)
        if self._next_row > rows.length:
            rows.append_dead(self._next_row - rows.length)
        self._rows = rows
        self._dirty = False

    def _open_tantivy(self, heap_bytes: int, threads: int) -> None:
        import tantivy

        directory = self._path / "tantivy"
        directory.mkdir(exist_ok=True)
        schema = _tantivy_schema()
        try:
            index = tantivy.Index(schema, path=str(directory), reuse=True)
        except ValueError as exc:  # another schema or an unreadable index: rebuild from SQLite
            logger.warning("recreating BM25 index", extra={"path": str(directory), "why": str(exc)})
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            index = tantivy.Index(schema, path=str(directory), reuse=True)
        index.register_tokenizer(ANALYZER_NAME, self._analyzer)
        index.config_reader(reload_policy="Manual")
        self._tantivy = index
        self._schema = schema
        heap = max(heap_bytes, threads * 15_000_000)  # tantivy wants >= 15 MB per thread
        self._writer = index.writer(heap_size=heap, num_threads=threads)
        # BM25 is derived data: rebuild it from SQLite when it lags (a crash between the two
        # commits), when the analyzer changed, or when its document count disagrees.
        expected = {"generation": self._generation, "analyzer": self._bm25.index_fingerprint()}
        index.reload()
        if self._read_bm25_state() != expected or index.searcher().num_docs != len(self._rows):
            self._rebuild_bm25()

    def _rebuild_bm25(self) -> None:
        """Re-create the BM25 documents from SQLite (after a crash or an analyzer change)."""
        self._writer.delete_all_documents()
        count = 0
        live_records = "SELECT row, record FROM chunks WHERE live = 1 ORDER BY row"
        for row, raw in self._writer_db().execute(live_records):
            record = ChunkRecord.model_validate_json(raw)
            groups = sorted(set(record.acl_groups))
            self._writer.add_document(self._tantivy_document(row, record, groups))
            count += 1
        self._writer.commit()
        self._write_bm25_state(self._generation)
        logger.info("rebuilt BM25 index", extra={"path": str(self._path), "chunks": count})

    def _read_bm25_state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self._path / "bm25.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def _write_bm25_state(self, generation: int) -> None:
        # no fsync needed: a lost or stale bm25.json only triggers a rebuild on open
        state = {"generation": generation, "analyzer": self._bm25.index_fingerprint()}
        _write_atomically(self._path / "bm25.json", json.dumps(state).encode(), sync=False)

    def _release_resources(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.rollback()
            with contextlib.suppress(Exception):
                writer.wait_merging_threads()  # also drops tantivy's writer lock
            del writer
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                if db.in_transaction:
                    db.execute("ROLLBACK")
                db.close()
        vectors, self._vectors = self._vectors, None
        if vectors is not None:
            vectors.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


def _tantivy_schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("row", fast=True)
    for raw in ("key", "tenant", "document_id", "source", "acl"):
        builder.add_text_field(raw, tokenizer_name="raw", index_option="basic")
    builder.add_boolean_field("public", indexed=True)
    for text in ("title", "body"):
        builder.add_text_field(text, tokenizer_name=ANALYZER_NAME, index_option="freq")
    return builder.build()


def _dot_rows(
    vectors: npt.NDArray[np.float32], rows: RowArray, query: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Dot products of ``query`` with ``vectors[rows]``, block by block.

    Blocks stay in cache, and einsum runs on the calling thread: a BLAS matrix-vector product
    fans out to BLAS's thread pool, which costs more than it saves for one query when several
    searches share the CPUs. Below half of all rows a gather pays off; above, a sequential
    scan of every row followed by a pick is cheaper.
    """
    out = np.empty(rows.size, dtype=np.float32)
    if rows.size < _GATHER_SHARE * len(vectors):
        for start in range(0, rows.size, _BLOCK_ROWS):
            block = np.take(vectors, rows[start : start + _BLOCK_ROWS], axis=0)
            np.einsum("ij,j->i", block, query, out=out[start : start + _BLOCK_ROWS])
        return out
    every = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), _BLOCK_ROWS):
        block = vectors[start : start + _BLOCK_ROWS]
        np.einsum("ij,j->i", block, query, out=every[start : start + _BLOCK_ROWS])
    np.take(every, rows, out=out)
    return out


def _select_records(conn: sqlite3.Connection, rows: Sequence[int]) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for start in range(0, len(rows), 500):
        batch = list(rows[start : start + 500])
        marks = ",".join("?" * len(batch))
        found += conn.execute(
            f"SELECT row, record FROM chunks WHERE row IN ({marks})", batch
        ).fetchall()
    return found


def _write_atomically(path: Path, data: bytes, *, sync: bool = True) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)
