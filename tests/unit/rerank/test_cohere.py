"""The Cohere adapter through the real cohere SDK over an httpx mock transport."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from docket.errors import ConfigurationError, RerankUnavailable
from docket.models import SearchHit
from docket.rerank.cohere import CohereReranker

from .conftest import DOCUMENTS, QUERY, texts

Handler = Callable[[httpx.Request], httpx.Response]


class CohereServer:
    """Plays recorded responses in turn and keeps every request it was sent."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0)

    def body(self, n: int = 0) -> dict[str, Any]:
        return json.loads(self.requests[n].content)


def reranker_for(server: CohereServer, **options: Any) -> CohereReranker:
    options.setdefault("max_retries", 0)
    return CohereReranker(
        api_key="test-key",
        httpx_client=httpx.Client(transport=httpx.MockTransport(server)),
        **options,
    )


def test_rerank_posts_the_v2_request_and_reorders(hits: list[SearchHit], recorded):
    # Given Cohere answers with its recorded v2 rerank response (C, A, D)
    server = CohereServer(httpx.Response(200, json=recorded("cohere_rerank_v2")))
    reranker = reranker_for(server)
    # When the four fused hits are reranked for three
    out = reranker.rerank(QUERY, hits, top_n=3)
    # Then one POST /v2/rerank carried the model, query, contextual documents and top_n
    [request] = server.requests
    assert request.method == "POST"
    assert request.url.path == "/v2/rerank"
    assert request.headers["authorization"] == "Bearer test-key"
    assert server.body() == {
        "model": "rerank-v3.5",
        "query": QUERY,
        "documents": DOCUMENTS,
        "top_n": 3,
    }
    # And the hits come back in Cohere's order with its scores
    assert texts(out) == [hits[2].chunk.text, hits[0].chunk.text, hits[3].chunk.text]
    assert [h.score for h in out] == [0.9984788, 0.48373142, 0.0631471]
    assert [h.ranks["rerank"] for h in out] == [1, 2, 3]
    assert out[0].ranks["hybrid"] == 3
    assert reranker.name == "cohere:rerank-v3.5"


def test_top_n_is_clamped_to_the_candidates_and_the_model_is_configurable(hits, recorded):
    server = CohereServer(httpx.Response(200, json=recorded("cohere_rerank_v2")))
    reranker = reranker_for(server, model="rerank-multilingual-v3.0", max_chars=10)
    reranker.rerank(QUERY, hits, top_n=50)
    body = server.body()
    assert body["top_n"] == 4
    assert body["model"] == "rerank-multilingual-v3.0"
    assert body["documents"] == [d[:10] for d in DOCUMENTS]
    assert reranker.name == "cohere:rerank-multilingual-v3.0"


def test_no_hits_sends_nothing():
    server = CohereServer()
    assert reranker_for(server).rerank(QUERY, [], top_n=3) == []
    assert server.requests == []


@pytest.mark.parametrize(
    ("status", "recording", "reason"),
    [
        (429, "cohere_error_429", "HTTP 429: You are using a Trial key"),
        (500, "cohere_error_500", "HTTP 500"),
    ],
)
def test_service_errors_become_rerank_unavailable(hits, recorded, status, recording, reason):
    server = CohereServer(httpx.Response(status, json=recorded(recording)))
    with pytest.raises(RerankUnavailable, match=reason) as caught:
        reranker_for(server).rerank(QUERY, hits, top_n=3)
    assert caught.value.code == "rerank_unavailable"
    assert caught.value.permanent is False


def test_a_body_that_is_not_json_becomes_rerank_unavailable(hits):
    server = CohereServer(httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(RerankUnavailable, match="HTTP 502"):
        reranker_for(server).rerank(QUERY, hits, top_n=3)


def test_transport_errors_become_rerank_unavailable(hits):
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    reranker = CohereReranker(
        api_key="test-key",
        httpx_client=httpx.Client(transport=httpx.MockTransport(timeout)),
        max_retries=0,
    )
    with pytest.raises(RerankUnavailable, match="ReadTimeout"):
        reranker.rerank(QUERY, hits, top_n=3)


def test_an_answer_about_other_documents_becomes_rerank_unavailable(hits):
    answer = {"id": "x", "results": [{"index": 7, "relevance_score": 0.9}], "meta": {}}
    server = CohereServer(httpx.Response(200, json=answer))
    with pytest.raises(RerankUnavailable, match="index 7 for 4 documents"):
        reranker_for(server).rerank(QUERY, hits, top_n=3)


def test_the_sdk_retries_a_429_max_retries_times(hits, recorded, monkeypatch):
    # Given a 429 then the recorded answer, and the SDK's backoff sleep recorded instead of slept
    import cohere.core.http_client as sdk_http

    slept: list[float] = []
    monkeypatch.setattr(sdk_http, "time", types.SimpleNamespace(sleep=slept.append, time=lambda: 0))
    server = CohereServer(
        httpx.Response(429, json=recorded("cohere_error_429")),
        httpx.Response(200, json=recorded("cohere_rerank_v2")),
    )
    # When the adapter allows one retry
    out = reranker_for(server, max_retries=1).rerank(QUERY, hits, top_n=3)
    # Then the second attempt answered
    assert len(server.requests) == 2 and len(slept) == 1
    assert texts(out)[0] == hits[2].chunk.text


def test_an_api_key_is_required_unless_a_client_is_given():
    with pytest.raises(ConfigurationError, match="DOCKET_COHERE_API_KEY"):
        CohereReranker(api_key=None)
    assert CohereReranker(client=object()).name == "cohere:rerank-v3.5"


def test_an_injected_client_is_used_as_given(hits):
    class FakeClient:
        def __init__(self) -> None:
            self.kwargs: dict[str, Any] = {}

        def rerank(self, **kwargs: Any) -> Any:
            self.kwargs = kwargs
            result = types.SimpleNamespace(index=1, relevance_score=0.5)
            return types.SimpleNamespace(results=[result])

    client = FakeClient()
    out = CohereReranker(client=client, model="m").rerank(QUERY, hits, top_n=1)
    assert client.kwargs == {"model": "m", "query": QUERY, "documents": DOCUMENTS, "top_n": 1}
    assert texts(out) == [hits[1].chunk.text]
