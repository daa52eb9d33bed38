"""The SageMaker adapter against botocore's Stubber, with a TEI cross-encoder's recorded body."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from docket.errors import RerankUnavailable
from docket.models import SearchHit
from docket.rerank import Reranker
from docket.rerank.sagemaker import DEFAULT_MAX_BATCH_SIZE, SageMakerReranker, TeiRerankCodec

from .conftest import DOCUMENTS, QUERY, texts

ENDPOINT = "docket-reranker"


class JsonBody:
    """Equals a request body whose JSON equals ``expected`` (Stubber compares params with ==)."""

    def __init__(self, expected: Any) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes | bytearray | str) and json.loads(other) == self.expected

    def __repr__(self) -> str:
        return f"JsonBody({self.expected!r})"


def body(payload: Any) -> StreamingBody:
    data = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def invocation(expected_body: Any, content_type: str = "application/json") -> dict[str, Any]:
    return {
        "EndpointName": ENDPOINT,
        "ContentType": content_type,
        "Accept": content_type,
        "Body": JsonBody(expected_body),
    }


def tei_request(documents: Sequence[str]) -> dict[str, Any]:
    return {"query": QUERY, "texts": list(documents), "truncate": True, "raw_scores": False}


@pytest.fixture(scope="module")
def client() -> Any:
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def test_rerank_sends_the_tei_body_and_reorders(client, stubber, hits, recorded):
    # Given the endpoint answers with TEI's recorded ranks for the recorded request
    stubber.add_response(
        "invoke_endpoint",
        {
            "Body": body(recorded("sagemaker_tei_rerank_response")),
            "ContentType": "application/json",
        },
        invocation(recorded("sagemaker_tei_rerank_request")),
    )
    reranker = SageMakerReranker(ENDPOINT, client=client)
    # When the four fused hits are reranked for three
    out = reranker.rerank(QUERY, hits, top_n=3)
    # Then the best three come back in the cross-encoder's order with its scores
    assert texts(out) == [hits[2].chunk.text, hits[0].chunk.text, hits[3].chunk.text]
    assert [h.score for h in out] == [0.99767303, 0.02466315, 0.00012161]
    assert reranker.name == "sagemaker:docket-reranker"
    assert isinstance(reranker, Reranker)


def test_the_recorded_request_is_what_the_codec_writes(recorded):
    encoded = TeiRerankCodec().encode(QUERY, DOCUMENTS)
    assert json.loads(encoded) == recorded("sagemaker_tei_rerank_request")


def test_candidates_go_in_batches_the_container_accepts(client, stubber, hits):
    # Given a container that takes three texts per request
    stubber.add_response(
        "invoke_endpoint",
        {
            "Body": body(
                [
                    {"index": 1, "score": 0.2},
                    {"index": 0, "score": 0.1},
                    {"index": 2, "score": 0.05},
                ]
            )
        },
        invocation(tei_request(DOCUMENTS[:3])),
    )
    stubber.add_response(
        "invoke_endpoint",
        {"Body": body([{"index": 0, "score": 0.7}])},
        invocation(tei_request(DOCUMENTS[3:])),
    )
    # When four candidates are reranked
    out = SageMakerReranker(ENDPOINT, client=client, max_batch_size=3).rerank(QUERY, hits, top_n=2)
    # Then the second request's index 0 is the fourth candidate
    assert texts(out) == [hits[3].chunk.text, hits[1].chunk.text]
    assert DEFAULT_MAX_BATCH_SIZE == 32


def test_a_model_error_becomes_rerank_unavailable(client, stubber, hits):
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=(
            "Received client error (413) from primary with message "
            '"{"error":"Input validation error: `inputs` must have less than 512 tokens"}"'
        ),
        http_status_code=424,
    )
    with pytest.raises(RerankUnavailable, match="docket-reranker failed: ModelError: Received"):
        SageMakerReranker(ENDPOINT, client=client).rerank(QUERY, hits, top_n=3)


def test_an_unreadable_body_becomes_rerank_unavailable(client, stubber, hits):
    stubber.add_response("invoke_endpoint", {"Body": body({"error": "Model is overloaded"})})
    with pytest.raises(RerankUnavailable, match="unreadable body"):
        SageMakerReranker(ENDPOINT, client=client).rerank(QUERY, hits, top_n=3)


def test_an_index_outside_the_batch_becomes_rerank_unavailable(client, stubber, hits):
    stubber.add_response("invoke_endpoint", {"Body": body([{"index": 4, "score": 0.9}])})
    with pytest.raises(RerankUnavailable, match="index 4 for 4 texts"):
        SageMakerReranker(ENDPOINT, client=client).rerank(QUERY, hits, top_n=3)


def test_no_hits_sends_nothing(client, stubber):
    assert SageMakerReranker(ENDPOINT, client=client).rerank(QUERY, [], top_n=3) == []


class PairsCodec:
    """Another container: ``{"inputs": [[query, text], ...]}`` in, ``{"scores": [...]}`` out."""

    content_type = "application/x-pairs+json"
    accept = "application/json"

    def encode(self, query: str, texts: Sequence[str]) -> bytes:
        return json.dumps({"inputs": [[query, t] for t in texts]}).encode()

    def decode(self, body: bytes) -> list[tuple[int, float]]:
        return list(enumerate(float(s) for s in json.loads(body)["scores"]))


def test_another_container_format_plugs_in_as_a_codec(client, stubber, hits: list[SearchHit]):
    stubber.add_response(
        "invoke_endpoint",
        {"Body": body({"scores": [0.1, 0.9, 0.3, 0.2]})},
        {
            "EndpointName": ENDPOINT,
            "ContentType": "application/x-pairs+json",
            "Accept": "application/json",
            "Body": JsonBody({"inputs": [[QUERY, d] for d in DOCUMENTS]}),
            "TargetVariant": "blue",
        },
    )
    reranker = SageMakerReranker(ENDPOINT, client=client, codec=PairsCodec(), target_variant="blue")
    out = reranker.rerank(QUERY, hits, top_n=2)
    assert texts(out) == [hits[1].chunk.text, hits[2].chunk.text]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="endpoint_name"):
        SageMakerReranker("", client=object())
    with pytest.raises(ValueError, match="max_batch_size"):
        SageMakerReranker(ENDPOINT, client=object(), max_batch_size=0)
