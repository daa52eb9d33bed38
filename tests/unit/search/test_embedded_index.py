"""EmbeddedIndex behaviour beyond the port's contract: commits, disk layout, recovery, threads."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from docket.errors import IndexUnavailable
from docket.models import SearchFilter
from docket.search.analysis import Bm25Settings
from docket.search.embedded import EmbeddedIndex

TENANT = "acme"


@pytest.fixture
def open_embedded(tmp_path, model):  # type: ignore[no-untyped-def]
    opened: list[EmbeddedIndex] = []

    def factory(name: str = "idx", **kwargs) -> EmbeddedIndex:  # type: ignore[no-untyped-def]
        index = EmbeddedIndex(tmp_path / name, model, **kwargs)
        opened.append(index)
        return index

    yield factory
    for index in opened:
        index.close()


def add(index, embedder, chunks, commit=True):  # type: ignore[no-untyped-def]
    index.upsert(chunks, embedder.embed_documents([c.text for c in chunks]))
    if commit:
        index.commit()


def test_writes_are_invisible_until_commit(open_embedded, embedder, make_chunk):
    index = open_embedded()
    chunk = make_chunk(TENANT, "a.txt", "pending kangaroo")
    flt = SearchFilter(tenant=TENANT)
    add(index, embedder, [chunk], commit=False)
    assert index.search_bm25("kangaroo", flt, 5) == []
    assert index.search_knn(embedder.embed_query("kangaroo"), flt, 5) == []
    assert index.count_document(TENANT, chunk.document_id) == 0
    index.commit()
    assert len(index.search_bm25("kangaroo", flt, 5)) == 1
    assert index.count_document(TENANT, chunk.document_id) == 1
    # a delete is likewise invisible until commit
    index.delete_document(TENANT, chunk.document_id)
    assert len(index.search_bm25("kangaroo", flt, 5)) == 1
    index.commit()
    assert index.search_bm25("kangaroo", flt, 5) == []


def test_close_discards_uncommitted_writes(open_embedded, embedder, make_chunk):
    index = open_embedded()
    kept = make_chunk(TENANT, "a.txt", "kept wombat")
    add(index, embedder, [kept])
    add(index, embedder, [make_chunk(TENANT, "b.txt", "lost wombat")], commit=False)
    index.close()
    reopened = open_embedded()
    hits = reopened.search_bm25("wombat", SearchFilter(tenant=TENANT), 5)
    assert [h.chunk.chunk_id for h in hits] == [kept.chunk_id]


def test_disk_layout_and_manifest(open_embedded, embedder, make_chunk):
    index = open_embedded()
    add(index, embedder, [make_chunk(TENANT, "a.txt", "layout")])
    names = {p.name for p in index.path.iterdir()}
    assert {
        "manifest.json",
        "LOCK",
        "chunks.sqlite",
        "vectors.f32",
        "tantivy",
        "bm25.json",
    } <= names
    manifest = json.loads((index.path / "manifest.json").read_text())
    assert manifest == {"format": 1, "model": index.model.model_dump()}
    assert json.loads((index.path / "bm25.json").read_text())["generation"] == 1


def test_one_open_index_per_directory(open_embedded):
    first = open_embedded()
    with pytest.raises(IndexUnavailable, match="open elsewhere"):
        open_embedded()
    first.close()
    open_embedded()  # the lock went with close()


def test_closed_index_refuses_calls(open_embedded, make_chunk):
    index = open_embedded()
    index.close()
    index.close()  # idempotent
    with pytest.raises(IndexUnavailable):
        index.search_bm25("x", SearchFilter(tenant=TENANT), 5)
    with pytest.raises(IndexUnavailable):
        index.delete_chunks(TENANT, ["chk_x"])


def test_data_without_manifest_is_refused(tmp_path, model):
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "vectors.f32").write_bytes(b"\0" * 16)
    with pytest.raises(IndexUnavailable, match="no manifest"):
        EmbeddedIndex(tmp_path / "idx", model)


@pytest.mark.parametrize("damage", ["stale_generation", "missing_state", "missing_tantivy"])
def test_bm25_is_rebuilt_from_sqlite_when_it_lags(open_embedded, embedder, make_chunk, damage):
    # Given a committed index
    index = open_embedded()
    chunks = [make_chunk(TENANT, "r.txt", f"aurora borealis {i}", ordinal=i) for i in range(3)]
    add(index, embedder, chunks)
    index.delete_chunks(TENANT, [chunks[0].chunk_id])
    index.commit()
    flt = SearchFilter(tenant=TENANT)
    before = index.search_bm25("aurora", flt, 10)
    path = index.path
    index.close()
    # When BM25 is behind SQLite (as after a crash between the two commits)
    if damage == "stale_generation":
        (path / "bm25.json").write_text(json.dumps({"generation": 1, "analyzer": "x"}))
    elif damage == "missing_state":
        (path / "bm25.json").unlink()
    else:
        shutil.rmtree(path / "tantivy")
    # Then reopening rebuilds it, deletes included
    # (scores may move: deleted documents no longer count in the BM25 statistics)
    reopened = open_embedded()
    after = reopened.search_bm25("aurora", flt, 10)
    assert [h.chunk for h in after] == [h.chunk for h in before]
    assert len(before) == 2


def test_changing_the_analyzer_rebuilds_bm25(open_embedded, embedder, make_chunk):
    index = open_embedded()
    add(index, embedder, [make_chunk(TENANT, "s.txt", "running quickly")])
    flt = SearchFilter(tenant=TENANT)
    assert len(index.search_bm25("runs", flt, 5)) == 1  # stemmed: run
    index.close()
    unstemmed = open_embedded(bm25=Bm25Settings(stemmer="none"))
    assert unstemmed.search_bm25("runs", flt, 5) == []
    assert len(unstemmed.search_bm25("running", flt, 5)) == 1


def test_english_analysis(open_embedded, embedder, make_chunk):
    index = open_embedded()
    chunk = make_chunk(TENANT, "e.txt", "The patient's kidneys were FAILING; Café naïve.")
    add(index, embedder, [chunk])
    flt = SearchFilter(tenant=TENANT)
    for query in ("kidney failure", "patients", "PATIENT", "café", "naive"):
        if query == "naive":  # no ASCII folding, as in Lucene's EnglishAnalyzer
            assert index.search_bm25(query, flt, 5) == []
        else:
            assert len(index.search_bm25(query, flt, 5)) == 1, query
    assert index.search_bm25("the and of", flt, 5) == []  # stop words only


def test_vectors_grow_past_the_initial_capacity(open_embedded, make_chunk):
    index = open_embedded()
    rng = np.random.default_rng(7)
    dim = index.model.dimension
    chunks = [make_chunk(TENANT, f"g{i // 100}.txt", f"row {i}", ordinal=i) for i in range(2600)]
    vectors = rng.normal(size=(len(chunks), dim)).astype(np.float32)
    for start in range(0, len(chunks), 900):
        index.upsert(chunks[start : start + 900], vectors[start : start + 900])
        index.commit()
    size = (index.path / "vectors.f32").stat().st_size
    assert size >= 2600 * dim * 4
    target = 2345
    flt = SearchFilter(tenant=TENANT)
    assert index.search_knn(vectors[target], flt, 1)[0].chunk.chunk_id == chunks[target].chunk_id
    index.close()
    reopened = open_embedded()
    hits = reopened.search_knn(vectors[target] * 3.0, flt, 3)  # scale does not matter
    assert hits[0].chunk.chunk_id == chunks[target].chunk_id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_update_metadata_sees_uncommitted_upserts(open_embedded, embedder, make_chunk):
    index = open_embedded()
    chunk = make_chunk(TENANT, "u.txt", "fresh chunk", groups=["a"])
    add(index, embedder, [chunk], commit=False)
    assert index.update_metadata([chunk.model_copy(update={"acl_groups": []})]) == 1
    index.commit()
    assert len(index.search_bm25("fresh", SearchFilter(tenant=TENANT), 5)) == 1


class _FailingWriter:
    """Wraps tantivy's writer and fails add_document, as a full disk would."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self._inner = inner

    def add_document(self, doc) -> None:  # type: ignore[no-untyped-def]
        raise ValueError("disk full")

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self._inner, name)


def test_a_failed_write_discards_uncommitted_writes_loudly(open_embedded, embedder, make_chunk):
    index = open_embedded()
    committed = make_chunk(TENANT, "f.txt", "committed otter")
    add(index, embedder, [committed])
    pending = make_chunk(TENANT, "g.txt", "pending otter")
    add(index, embedder, [pending], commit=False)
    # When a later write fails half-way
    real = index._writer
    index._writer = _FailingWriter(real)
    with pytest.raises(IndexUnavailable, match="disk full"):
        add(index, embedder, [make_chunk(TENANT, "h.txt", "doomed otter")], commit=False)
    index._writer = real
    # Then the next commit says the pending writes were lost, searches keep the last commit
    with pytest.raises(IndexUnavailable, match="discarded"):
        index.commit()
    flt = SearchFilter(tenant=TENANT)
    assert [h.chunk.chunk_id for h in index.search_bm25("otter", flt, 5)] == [committed.chunk_id]
    # And the index keeps working
    add(index, embedder, [pending])
    assert len(index.search_bm25("otter", flt, 5)) == 2


def test_concurrent_searches_see_whole_commits(open_embedded, embedder, make_chunk):
    # Given a document that a writer keeps replacing with a new version of 4 chunks
    index = open_embedded()
    source = "live.txt"

    def version(v: int):  # type: ignore[no-untyped-def]
        return [make_chunk(TENANT, source, f"walrus v{v} part {i}", ordinal=i) for i in range(4)]

    add(index, embedder, version(0))
    document_id = version(0)[0].document_id
    flt = SearchFilter(tenant=TENANT)
    stop = threading.Event()
    errors: list[str] = []
    searches: list[int] = []

    def writer() -> None:
        for v in range(1, 12):
            index.delete_document(TENANT, document_id)
            add(index, embedder, version(v))
        stop.set()

    def reader() -> None:
        query = embedder.embed_query("walrus part")
        while not stop.is_set():
            for hits in (index.search_bm25("walrus", flt, 50), index.search_knn(query, flt, 50)):
                versions = {h.chunk.text.split()[1] for h in hits}
                if len(hits) != 4 or len(versions) != 1:
                    errors.append(f"{len(hits)} hits from versions {sorted(versions)}")
                searches.append(1)

    # When readers search while it commits / Then every search sees exactly one whole version
    threads = [threading.Thread(target=reader) for _ in range(4)] + [
        threading.Thread(target=writer)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(searches) > 20  # the readers really ran alongside the commits
    assert index.count_document(TENANT, document_id) == 4


def test_matching_rows_is_the_knn_candidate_set(open_embedded, embedder, make_chunk):
    index = open_embedded()
    chunks = [
        make_chunk(TENANT, "m.txt", "a", ordinal=0),
        make_chunk(TENANT, "m.txt", "b", groups=["x"], ordinal=1),
        make_chunk("other", "m.txt", "c", ordinal=0),
    ]
    add(index, embedder, chunks)
    assert index.matching_rows(SearchFilter(tenant=TENANT)).tolist() == [0]
    assert index.matching_rows(SearchFilter(tenant=TENANT, groups=frozenset({"x"}))).tolist() == [
        0,
        1,
    ]
    assert index.matching_rows(SearchFilter(tenant="nobody")).tolist() == []


def test_path_is_created(tmp_path: Path, model):
    index = EmbeddedIndex(tmp_path / "deep" / "nested" / "idx", model)
    assert (tmp_path / "deep" / "nested" / "idx" / "manifest.json").exists()
    index.close()


def test_an_index_of_the_other_precision_says_how_to_open_it(tmp_path, model):
    from docket.errors import ModelMismatch
    from docket.models import EmbeddingModelInfo

    # Given an index built with the fp32 generation of a model
    fp32 = EmbeddingModelInfo(name="m", version="abc123", dimension=model.dimension)
    EmbeddedIndex(tmp_path / "idx", fp32).close()
    # When it is opened for the int8 generation of the same weights
    int8 = fp32.model_copy(update={"version": "abc123-int8"})
    # Then it is refused, naming the setting that opens it
    with pytest.raises(ModelMismatch, match="DOCKET_EMBEDDING_PRECISION=fp32"):
        EmbeddedIndex(tmp_path / "idx", int8)
