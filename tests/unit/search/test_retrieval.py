"""HybridRetriever: model check, modes, fusion of candidates, timings."""

from __future__ import annotations

import pytest
from tests.search_contract import BagOfWordsEmbedder

from docket.errors import ModelMismatch
from docket.models import EmbeddingModelInfo, SearchFilter
from docket.search.fusion import Fusion, dbsf_fuse, rrf_fuse
from docket.search.retrieval import HybridRetriever

TENANT = "acme"
STAGES = {"embed", "bm25", "knn", "fuse"}


class CountingEmbedder:
    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.queries: list[str] = []

    @property
    def model(self) -> EmbeddingModelInfo:
        return self.inner.model

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        return self.inner.embed_documents(texts)

    def embed_query(self, text):  # type: ignore[no-untyped-def]
        self.queries.append(text)
        return self.inner.embed_query(text)


@pytest.fixture
def corpus(index, embedder, make_chunk):  # type: ignore[no-untyped-def]
    texts = [
        "Photosynthesis converts light energy into chemical energy in plants.",
        "Chlorophyll absorbs red and blue light.",
        "The stock market fell sharply on Monday.",
        "Plants need water, light and carbon dioxide.",
        "Interest rates and market volatility.",
        "Energy markets respond to weather.",
    ]
    chunks = [make_chunk(TENANT, "c.txt", t, ordinal=i) for i, t in enumerate(texts)]
    chunks.append(make_chunk("other", "c.txt", "Photosynthesis in plants, other tenant."))
    index.upsert(chunks, embedder.embed_documents([c.text for c in chunks]))
    index.commit()
    return chunks


@pytest.mark.parametrize("method", ["dbsf", "rrf"])
def test_hybrid_fuses_bm25_and_knn_candidates(index, embedder, corpus, method):
    # Given a retriever over an index and a matching embedder, with either fusion
    fusion = Fusion(method=method, rrf_k=60)
    retriever = HybridRetriever(index, embedder, candidate_k=5, fusion=fusion)
    flt = SearchFilter(tenant=TENANT)
    # When retrieving in hybrid mode
    result = retriever.retrieve("light energy in plants", flt, top_k=3)
    # Then the hits are the fusion of both retrievers' 5-deep candidate lists, cut to top_k
    lists = {
        "bm25": index.search_bm25("light energy in plants", flt, 5),
        "knn": index.search_knn(embedder.embed_query("light energy in plants"), flt, 5),
    }
    if method == "rrf":
        expected = rrf_fuse(lists, k=60, weights={"bm25": 0.5, "knn": 0.5}, limit=3)
    else:
        expected = dbsf_fuse(lists, depth=5, weights={"bm25": 0.5, "knn": 0.5}, limit=3)
    assert result.hits == expected
    assert result.mode == "hybrid"
    assert len(result.hits) == 3
    assert all(h.retriever == "hybrid" and h.chunk.tenant == TENANT for h in result.hits)
    assert set(result.hits[0].ranks) <= {"bm25", "knn"}
    assert set(result.timings) == STAGES and all(v >= 0 for v in result.timings.values())


def test_bm25_mode_does_not_embed(index, embedder, corpus):
    spy = CountingEmbedder(embedder)
    result = HybridRetriever(index, spy).retrieve(
        "market", SearchFilter(tenant=TENANT), top_k=2, mode="bm25"
    )
    assert spy.queries == []
    assert [h.retriever for h in result.hits] == ["bm25", "bm25"]
    assert result.timings["embed"] == 0.0 and result.timings["knn"] == 0.0


def test_dense_mode_uses_knn_only(index, embedder, corpus):
    spy = CountingEmbedder(embedder)
    result = HybridRetriever(index, spy).retrieve(
        corpus[1].text, SearchFilter(tenant=TENANT), top_k=2, mode="dense"
    )
    assert spy.queries == [corpus[1].text]
    assert result.hits[0].chunk.chunk_id == corpus[1].chunk_id
    assert [h.retriever for h in result.hits] == ["knn", "knn"]
    assert result.timings["bm25"] == 0.0


def test_top_k_above_candidate_k_still_returns_top_k(index, embedder, corpus):
    retriever = HybridRetriever(index, embedder, candidate_k=1)
    result = retriever.retrieve("plants light market energy", SearchFilter(tenant=TENANT), 4)
    assert len(result.hits) == 4


def test_blank_query_returns_nothing(index, embedder, corpus):
    spy = CountingEmbedder(embedder)
    result = HybridRetriever(index, spy).retrieve("   ", SearchFilter(tenant=TENANT), top_k=5)
    assert result.hits == [] and spy.queries == []


def test_top_k_must_be_positive(index, embedder):
    with pytest.raises(ValueError):
        HybridRetriever(index, embedder).retrieve("x", SearchFilter(tenant=TENANT), top_k=0)


@pytest.mark.parametrize(
    "query_model",
    [
        EmbeddingModelInfo(name="other-model", version="1", dimension=64),
        EmbeddingModelInfo(name="test-bag-of-words", version="2", dimension=64),
        EmbeddingModelInfo(name="test-bag-of-words", version="1", dimension=32),
    ],
)
def test_model_mismatch_is_refused_before_searching(index, query_model):
    # Given an embedder whose model differs from the index's in name, version or dimension
    class OtherEmbedder:
        model = query_model

        def embed_query(self, text):  # type: ignore[no-untyped-def]
            raise AssertionError("must not embed with the wrong model")

        def embed_documents(self, texts):  # type: ignore[no-untyped-def]
            raise AssertionError("must not embed with the wrong model")

    retriever = HybridRetriever(index, OtherEmbedder())  # type: ignore[arg-type]
    # When retrieving in any mode / Then ModelMismatch names both models
    for mode in ("bm25", "dense", "hybrid"):
        with pytest.raises(ModelMismatch) as raised:
            retriever.retrieve("anything", SearchFilter(tenant=TENANT), 5, mode=mode)  # type: ignore[arg-type]
        assert index.model.tag in str(raised.value) and query_model.tag in str(raised.value)


def test_server_side_hybrid_is_one_call_to_the_index_when_configured() -> None:
    from docket.config import Settings
    from docket.models import SearchFilter
    from docket.search.retrieval import retriever_for

    class HybridIndex:
        model = BagOfWordsEmbedder().model

        def __init__(self) -> None:
            self.calls: list[str] = []

        def search_hybrid(self, query, vector, flt, k):  # type: ignore[no-untyped-def]
            self.calls.append(f"hybrid:{query}:{k}")
            return []

        def search_bm25(self, query, flt, k):  # type: ignore[no-untyped-def]
            self.calls.append("bm25")
            return []

        def search_knn(self, vector, flt, k):  # type: ignore[no-untyped-def]
            self.calls.append("knn")
            return []

        def tuned_fusion(self) -> None:
            return None

    index = HybridIndex()
    server = Settings(search_backend="opensearch", opensearch_hybrid="server")
    retriever_for(server, index, BagOfWordsEmbedder()).retrieve(  # type: ignore[arg-type]
        "notice period", SearchFilter(tenant="acme"), 5
    )
    assert index.calls == ["hybrid:notice period:100"]  # the candidate depth, cut to top_k after
    index.calls.clear()
    client = Settings(search_backend="opensearch", opensearch_hybrid="client")
    retriever_for(client, index, BagOfWordsEmbedder()).retrieve(  # type: ignore[arg-type]
        "notice period", SearchFilter(tenant="acme"), 5
    )
    assert index.calls == ["bm25", "knn"]


def test_the_fusion_comes_from_defaults_then_the_index_then_explicit_settings() -> None:
    from tests.unit.fakes import FakeIndex

    from docket.config import Settings
    from docket.models import EmbeddingModelInfo
    from docket.search.retrieval import fusion_for

    minilm = EmbeddingModelInfo(
        name="sentence-transformers/all-MiniLM-L6-v2", version="x", dimension=384
    )
    # Given the calibrated model and no tuning: its pivot, the default weights
    index = FakeIndex(minilm)
    assert fusion_for(Settings(), index).dense_pivot == 0.55
    # An uncalibrated model: fixed weights
    assert fusion_for(Settings(), FakeIndex(BagOfWordsEmbedder().model)).dense_pivot is None
    # When the index was tuned on its owner's golden set, that wins over the defaults
    index.store_tuned_fusion({"fusion": {"bm25_weight": 0.3, "dense_slope": 1.0, "bogus": 1}})
    tuned = fusion_for(Settings(), index)
    assert (tuned.bm25_weight, tuned.dense_slope, tuned.dense_pivot) == (0.3, 1.0, 0.55)
    # And a setting given explicitly wins over the tuning
    explicit = fusion_for(Settings(fusion_bm25_weight=0.7, fusion_dense_pivot=0.6), index)
    assert (explicit.bm25_weight, explicit.dense_slope, explicit.dense_pivot) == (0.7, 1.0, 0.6)
