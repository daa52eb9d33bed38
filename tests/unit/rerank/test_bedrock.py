"""The Bedrock adapter against botocore's Stubber, which checks every request against the
bedrock-agent-runtime service model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from docket.errors import RerankUnavailable
from docket.rerank import rerank_or_fallback
from docket.rerank.bedrock import (
    MAX_SOURCES_PER_CALL,
    MAX_TEXT_CHARS,
    BedrockReranker,
    arn_region,
    bedrock_model_arn,
)

from .conftest import DOCUMENTS, QUERY, make_hit, texts
from .test_port import RecordingLogger

MODEL_ARN = "arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0"


def expected_request(
    documents: Sequence[str], number_of_results: int, query: str = QUERY
) -> dict[str, Any]:
    return {
        "queries": [{"type": "TEXT", "textQuery": {"text": query}}],
        "sources": [
            {
                "type": "INLINE",
                "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": d}},
            }
            for d in documents
        ],
        "rerankingConfiguration": {
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": {
                "numberOfResults": number_of_results,
                "modelConfiguration": {"modelArn": MODEL_ARN},
            },
        },
    }


@pytest.fixture(scope="module")
def client() -> Any:
    return boto3.client("bedrock-agent-runtime", region_name="us-west-2")


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def test_rerank_sends_the_documented_request_and_reorders(client, stubber, hits, recorded):
    # Given Bedrock answers with the recorded results (C, A, D)
    stubber.add_response("rerank", recorded("bedrock_rerank"), expected_request(DOCUMENTS, 3))
    reranker = BedrockReranker(MODEL_ARN, client=client)
    # When the four fused hits are reranked for three
    out = reranker.rerank(QUERY, hits, top_n=3)
    # Then the hits come back in Bedrock's order with its scores
    assert texts(out) == [hits[2].chunk.text, hits[0].chunk.text, hits[3].chunk.text]
    assert [h.score for h in out] == pytest.approx([0.8713379, 0.41015625, 0.0211181])
    assert all(h.retriever == "rerank" for h in out)
    assert reranker.name == "bedrock:amazon.rerank-v1:0"


def test_number_of_results_is_clamped_to_the_candidates(client, stubber, hits, recorded):
    stubber.add_response("rerank", recorded("bedrock_rerank"), expected_request(DOCUMENTS, 4))
    BedrockReranker(MODEL_ARN, client=client).rerank(QUERY, hits, top_n=100)


def test_no_hits_sends_nothing(client, stubber):
    assert BedrockReranker(MODEL_ARN, client=client).rerank(QUERY, [], top_n=3) == []


def test_throttling_becomes_rerank_unavailable_and_the_query_keeps_the_fused_order(
    client, stubber, hits
):
    # Given Bedrock throttles the call
    stubber.add_client_error(
        "rerank",
        service_error_code="ThrottlingException",
        service_message="Your request was denied due to exceeding the account quotas",
        http_status_code=429,
        expected_params=expected_request(DOCUMENTS, 2),
    )
    reranker = BedrockReranker(MODEL_ARN, client=client)
    # When the query path reranks through the fallback helper
    logger = RecordingLogger()
    out, used = rerank_or_fallback(reranker, QUERY, hits, 2, logger)
    # Then it keeps the fused order and the warning names the service's error
    assert (out, used) == (hits[:2], False)
    [(_, extra)] = logger.warnings
    assert extra["reason"].startswith("bedrock rerank failed: ThrottlingException: Your request")
    assert extra["reranker"] == "bedrock:amazon.rerank-v1:0"


def test_access_denied_becomes_rerank_unavailable(client, stubber, hits):
    stubber.add_client_error("rerank", "AccessDeniedException", "not authorized", 403)
    with pytest.raises(RerankUnavailable, match="AccessDeniedException: not authorized"):
        BedrockReranker(MODEL_ARN, client=client).rerank(QUERY, hits, top_n=3)


def test_an_invalid_request_becomes_rerank_unavailable(client, hits):
    # Given a candidate whose text is empty (the service model wants at least one character)
    empty = [make_hit("", rank=1)]
    # Then botocore's parameter validation fails before any call, and the adapter says so
    with pytest.raises(RerankUnavailable, match="bedrock rerank failed: Parameter validation"):
        BedrockReranker(MODEL_ARN, client=client).rerank(QUERY, empty, top_n=1)


def test_an_index_outside_the_batch_becomes_rerank_unavailable(client, stubber, hits):
    stubber.add_response("rerank", {"results": [{"index": 4, "relevanceScore": 0.9}]})
    with pytest.raises(RerankUnavailable, match="index 4 for 4 documents"):
        BedrockReranker(MODEL_ARN, client=client).rerank(QUERY, hits, top_n=3)


def test_pages_are_followed(client, stubber, hits):
    # Given the results come in two pages
    first = {"results": [{"index": 2, "relevanceScore": 0.9}], "nextToken": "page-2"}
    second = {"results": [{"index": 0, "relevanceScore": 0.4}]}
    stubber.add_response("rerank", first, expected_request(DOCUMENTS, 2))
    stubber.add_response(
        "rerank", second, {**expected_request(DOCUMENTS, 2), "nextToken": "page-2"}
    )
    # Then both pages count
    out = BedrockReranker(MODEL_ARN, client=client).rerank(QUERY, hits, top_n=2)
    assert texts(out) == [hits[2].chunk.text, hits[0].chunk.text]


def test_more_candidates_than_one_call_takes_go_in_batches(client, stubber):
    # Given 1001 candidates, one more than a Rerank call accepts
    hits = [make_hit(f"passage {i}", rank=i + 1) for i in range(MAX_SOURCES_PER_CALL + 1)]
    documents = [f"passage {i}" for i in range(MAX_SOURCES_PER_CALL + 1)]
    stubber.add_response(
        "rerank",
        {"results": [{"index": 999, "relevanceScore": 0.9}, {"index": 0, "relevanceScore": 0.5}]},
        expected_request(documents[:1000], 3),
    )
    stubber.add_response(
        "rerank",
        {"results": [{"index": 0, "relevanceScore": 0.95}]},
        expected_request(documents[1000:], 1),
    )
    # When they are reranked for three
    out = BedrockReranker(MODEL_ARN, client=client).rerank(QUERY, hits, top_n=3)
    # Then the second call's index 0 is candidate 1000, and the scores merge across calls
    assert texts(out) == ["passage 1000", "passage 999", "passage 0"]


def test_a_smaller_batch_size_splits_sooner(client, stubber, hits):
    stubber.add_response(
        "rerank",
        {"results": [{"index": 1, "relevanceScore": 0.3}]},
        expected_request(DOCUMENTS[:3], 1),
    )
    stubber.add_response(
        "rerank",
        {"results": [{"index": 0, "relevanceScore": 0.6}]},
        expected_request(DOCUMENTS[3:], 1),
    )
    out = BedrockReranker(MODEL_ARN, client=client, batch_size=3).rerank(QUERY, hits, top_n=1)
    assert texts(out) == [hits[3].chunk.text]


def test_the_limits_match_the_service_model():
    model = botocore.session.get_session().get_service_model("bedrock-agent-runtime")
    assert model.shape_for("RerankSourcesList").metadata["max"] == MAX_SOURCES_PER_CALL
    assert model.shape_for("RerankTextDocumentTextString").metadata["max"] == MAX_TEXT_CHARS


def test_the_query_is_cut_to_the_service_limit(client, stubber, hits, recorded):
    long_query = "meals " * 6000
    stubber.add_response(
        "rerank",
        recorded("bedrock_rerank"),
        expected_request(DOCUMENTS, 3, query=long_query[:MAX_TEXT_CHARS]),
    )
    BedrockReranker(MODEL_ARN, client=client).rerank(long_query, hits, top_n=3)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_chars"):
        BedrockReranker(MODEL_ARN, client=object(), max_chars=MAX_TEXT_CHARS + 1)
    with pytest.raises(ValueError, match="batch_size"):
        BedrockReranker(MODEL_ARN, client=object(), batch_size=MAX_SOURCES_PER_CALL + 1)
    with pytest.raises(ValueError, match="model_arn"):
        BedrockReranker("", client=object())


def test_model_ids_expand_to_foundation_model_arns():
    assert bedrock_model_arn("amazon.rerank-v1:0", "ca-central-1") == (
        "arn:aws:bedrock:ca-central-1::foundation-model/amazon.rerank-v1:0"
    )
    assert bedrock_model_arn(MODEL_ARN, "eu-central-1") == MODEL_ARN
    assert arn_region(MODEL_ARN) == "us-west-2"
    assert arn_region("amazon.rerank-v1:0") is None
    assert BedrockReranker(MODEL_ARN)._region == "us-west-2"
