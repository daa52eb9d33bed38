"""Hosted embedders through their real SDKs: OpenAI and Cohere over an httpx mock transport,
Bedrock Titan and SageMaker against botocore's Stubber. Request shapes, batching to provider
limits, L2-normalised float32 output, model info, and errors."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from docket.config import Settings
from docket.embedding.bedrock import MAX_INPUT_CHARS, BedrockTitanEmbedder
from docket.embedding.cohere import CohereEmbedder
from docket.embedding.factory import get_embedder, reset_embedders
from docket.embedding.openai import OpenAIEmbedder
from docket.embedding.port import Embedder
from docket.embedding.sagemaker import SageMakerEmbedder
from docket.errors import ConfigurationError, EmbeddingUnavailable

TEXTS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def raw_vector(text: str, dimension: int = 4) -> list[float]:
    """A deterministic, unnormalised vector per text (so normalisation is visible)."""
    seed = sum(map(ord, text))
    return [float((seed * (i + 3)) % 7 + 1) for i in range(dimension)]


def unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float64)
    return (array / np.linalg.norm(array)).astype(np.float32)


def assert_embeds(embedder: Embedder, texts: list[str], vectors: np.ndarray) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(texts), embedder.model.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    for text, row in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(row, unit(raw_vector(text, embedder.model.dimension)), rtol=1e-6)


class HttpServer:
    """Answers with ``respond(body)`` (or a queued response) and keeps every request."""

    def __init__(self, respond: Callable[[dict[str, Any]], httpx.Response]) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(json.loads(request.content))

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


# --- OpenAI ---------------------------------------------------------------------------------------------


def openai_reply(body: dict[str, Any], *, shuffle: bool = True) -> httpx.Response:
    dimension = body.get("dimensions", 4)
    data = [
        {"object": "embedding", "index": i, "embedding": raw_vector(text, dimension)}
        for i, text in enumerate(body["input"])
    ]
    if shuffle:
        data.reverse()  # the API does not promise order: the index does
    return httpx.Response(
        200,
        json={
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": 5, "total_tokens": 5},
        },
    )


def openai_embedder(server: HttpServer, **options: Any) -> OpenAIEmbedder:
    options.setdefault("dimensions", 4)
    return OpenAIEmbedder(api_key="sk-test", http_client=server.client(), max_retries=0, **options)


def test_openai_sends_the_embeddings_request_and_normalises() -> None:
    # Given an OpenAI server
    server = HttpServer(openai_reply)
    embedder = openai_embedder(server)
    # When five documents are embedded
    vectors = embedder.embed_documents(TEXTS)
    # Then one POST /v1/embeddings carried the model, the texts, floats and the dimensions
    [request] = server.requests
    assert request.method == "POST" and request.url.path == "/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert server.bodies() == [
        {
            "model": "text-embedding-3-small",
            "input": TEXTS,
            "encoding_format": "float",
            "dimensions": 4,
        }
    ]
    # And the vectors are unit length, float32, in the texts' order
    assert_embeds(embedder, TEXTS, vectors)
    assert embedder.model.name == "openai:text-embedding-3-small"
    assert (embedder.model.version, embedder.model.dimension) == ("1", 4)


def test_openai_declares_the_models_own_dimension_and_sends_none_without_one() -> None:
    server = HttpServer(openai_reply)
    embedder = OpenAIEmbedder(
        "text-embedding-3-large", api_key="k", http_client=server.client(), max_retries=0
    )
    assert embedder.model.dimension == 3072
    with pytest.raises(ConfigurationError, match="3072"):  # the mock answers 4 dimensions
        embedder.embed_query("q")
    assert "dimensions" not in server.bodies()[0]


def test_openai_batches_by_count_and_by_characters() -> None:
    server = HttpServer(openai_reply)
    embedder = openai_embedder(server, batch_size=2)
    vectors = embedder.embed_documents(TEXTS)
    assert [body["input"] for body in server.bodies()] == [TEXTS[0:2], TEXTS[2:4], TEXTS[4:]]
    assert_embeds(embedder, TEXTS, vectors)

    by_chars = HttpServer(openai_reply)
    embedder = openai_embedder(by_chars, max_batch_chars=10)
    embedder.embed_documents(TEXTS)
    assert [body["input"] for body in by_chars.bodies()] == [
        ["alpha", "beta"],
        ["gamma", "delta"],
        ["epsilon"],
    ]


def test_openai_query_is_one_vector_and_no_texts_is_no_request() -> None:
    server = HttpServer(openai_reply)
    embedder = openai_embedder(server)
    query = embedder.embed_query("alpha")
    assert query.shape == (4,) and query.dtype == np.float32
    np.testing.assert_allclose(query, unit(raw_vector("alpha")), rtol=1e-6)
    assert embedder.embed_documents([]).shape == (0, 4)
    assert len(server.requests) == 1
    with pytest.raises(TypeError):
        embedder.embed_documents("one string")


@pytest.mark.parametrize("status", [429, 500, 400])
def test_openai_http_errors_are_embedding_unavailable(status: int) -> None:
    server = HttpServer(
        lambda body: httpx.Response(status, json={"error": {"message": "slow down", "type": "x"}})
    )
    with pytest.raises(EmbeddingUnavailable, match=f"HTTP {status}"):
        openai_embedder(server).embed_documents(TEXTS)


def test_openai_connection_errors_are_embedding_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    embedder = OpenAIEmbedder(
        api_key="k",
        dimensions=4,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(refuse)),
    )
    with pytest.raises(EmbeddingUnavailable, match="APIConnectionError"):
        embedder.embed_query("q")


@pytest.mark.parametrize(
    "vectors, error, message",
    [
        # a zero vector cannot be normalised
        ([[0.0, 0.0, 0.0, 0.0]], EmbeddingUnavailable, "zero or non-finite"),
        ([[1.0, 2.0, 3.0, float("nan")]], EmbeddingUnavailable, "zero or non-finite"),
        ([[1.0, 2.0, 3.0, 4.0]] * 2, EmbeddingUnavailable, "for 1 texts"),  # two for one
        ([[1.0, 2.0]], ConfigurationError, "dimension 2"),  # not the configured dimension
    ],
)
def test_openai_nonsense_vectors_are_refused(
    vectors: list[list[float]], error: type[Exception], message: str
) -> None:
    def reply(body: dict[str, Any]) -> httpx.Response:
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        payload = {"object": "list", "data": data, "model": "m", "usage": {"prompt_tokens": 1}}
        # json.dumps writes NaN as the SDK's parser reads it
        return httpx.Response(
            200, content=json.dumps(payload), headers={"content-type": "application/json"}
        )

    with pytest.raises(error, match=message):
        openai_embedder(HttpServer(reply)).embed_query("q")


def test_openai_needs_a_key_unless_a_compatible_server_is_named() -> None:
    with pytest.raises(ConfigurationError, match="DOCKET_OPENAI_API_KEY"):
        OpenAIEmbedder()
    server = HttpServer(openai_reply)
    embedder = OpenAIEmbedder(
        "sentence-transformers/all-MiniLM-L6-v2",
        base_url="http://vllm.internal/v1",
        http_client=server.client(),
    )
    assert embedder.model.dimension == 384
    assert embedder.model.name == "openai:sentence-transformers/all-MiniLM-L6-v2"


# --- Cohere ---------------------------------------------------------------------------------------------


def cohere_reply(body: dict[str, Any]) -> httpx.Response:
    dimension = body.get("output_dimension", 4)
    return httpx.Response(
        200,
        json={
            "id": "e1",
            "response_type": "embeddings_by_type",
            "embeddings": {"float": [raw_vector(t, dimension) for t in body["texts"]]},
            "texts": body["texts"],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 5}},
        },
    )


def cohere_embedder(server: HttpServer, **options: Any) -> CohereEmbedder:
    options.setdefault("dimensions", 4)
    return CohereEmbedder(
        "embed-v4.0", api_key="co-test", httpx_client=server.client(), max_retries=0, **options
    )


def test_cohere_embeds_documents_and_queries_with_their_input_types() -> None:
    # Given a Cohere server
    server = HttpServer(cohere_reply)
    embedder = cohere_embedder(server)
    # When documents and then a query are embedded
    vectors = embedder.embed_documents(TEXTS)
    query = embedder.embed_query("alpha")
    # Then documents went as search_document and the query as search_query, to /v2/embed
    assert [r.url.path for r in server.requests] == ["/v2/embed", "/v2/embed"]
    assert server.requests[0].headers["authorization"] == "Bearer co-test"
    common = {
        "model": "embed-v4.0",
        "embedding_types": ["float"],
        "truncate": "END",
        "output_dimension": 4,
    }
    assert server.bodies() == [
        {**common, "input_type": "search_document", "texts": TEXTS},
        {**common, "input_type": "search_query", "texts": ["alpha"]},
    ]
    assert_embeds(embedder, TEXTS, vectors)
    np.testing.assert_allclose(query, unit(raw_vector("alpha")), rtol=1e-6)
    assert embedder.model.name == "cohere:embed-v4.0" and embedder.model.dimension == 4


def test_cohere_sends_at_most_96_texts_a_request() -> None:
    server = HttpServer(cohere_reply)
    texts = [f"text {i}" for i in range(100)]
    vectors = cohere_embedder(server).embed_documents(texts)
    assert [len(body["texts"]) for body in server.bodies()] == [96, 4]
    assert vectors.shape == (100, 4)
    np.testing.assert_allclose(vectors[99], unit(raw_vector("text 99")), rtol=1e-6)


def test_cohere_known_model_dimension_and_no_output_dimension_by_default() -> None:
    server = HttpServer(cohere_reply)
    embedder = CohereEmbedder(api_key="k", httpx_client=server.client(), max_retries=0)
    assert embedder.model.name == "cohere:embed-english-v3.0"
    assert embedder.model.dimension == 1024
    with pytest.raises(ConfigurationError):
        embedder.embed_query("q")  # the mock answered 4 dimensions
    assert "output_dimension" not in server.bodies()[0]


@pytest.mark.parametrize("status", [429, 500, 400])
def test_cohere_errors_are_embedding_unavailable(status: int) -> None:
    server = HttpServer(lambda body: httpx.Response(status, json={"message": "nope"}))
    with pytest.raises(EmbeddingUnavailable, match=f"HTTP {status}: nope"):
        cohere_embedder(server).embed_documents(TEXTS)


def test_cohere_needs_a_key() -> None:
    with pytest.raises(ConfigurationError, match="DOCKET_COHERE_API_KEY"):
        CohereEmbedder()


# --- Bedrock Titan -------------------------------------------------------------------------------------


class JsonBody:
    """Equals a request body whose JSON equals ``expected`` (Stubber compares params with ==)."""

    def __init__(self, expected: Any) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes | bytearray | str) and json.loads(other) == self.expected

    def __repr__(self) -> str:
        return f"JsonBody({self.expected!r})"


def stream(payload: Any) -> StreamingBody:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(data), len(data))


@pytest.fixture(scope="module")
def bedrock_client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1")


@pytest.fixture
def bedrock(bedrock_client: Any) -> Iterator[Stubber]:
    with Stubber(bedrock_client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def titan_call(
    text: str, model: str = "amazon.titan-embed-text-v2:0", **body: Any
) -> dict[str, Any]:
    return {
        "modelId": model,
        "body": JsonBody({"inputText": text, **body}),
        "contentType": "application/json",
        "accept": "application/json",
    }


def titan_reply(text: str, dimension: int) -> dict[str, Any]:
    return {
        "body": stream({"embedding": raw_vector(text, dimension), "inputTextTokenCount": 2}),
        "contentType": "application/json",
    }


def test_titan_sends_one_text_per_call_with_dimensions_and_normalize(
    bedrock_client: Any, bedrock: Stubber
) -> None:
    # Given Titan v2 at 256 dimensions
    texts = TEXTS[:3]
    for text in texts:
        bedrock.add_response(
            "invoke_model", titan_reply(text, 256), titan_call(text, dimensions=256, normalize=True)
        )
    embedder = BedrockTitanEmbedder(dimensions=256, client=bedrock_client, concurrency=1)
    # When three documents are embedded
    vectors = embedder.embed_documents(texts)
    # Then three InvokeModel calls went out, and the vectors are unit length in order
    assert_embeds(embedder, texts, vectors)
    assert embedder.model.name == "bedrock:amazon.titan-embed-text-v2:0"
    assert embedder.model.dimension == 256


def test_titan_v1_takes_neither_dimensions_nor_normalize(
    bedrock_client: Any, bedrock: Stubber
) -> None:
    model = "amazon.titan-embed-text-v1"
    bedrock.add_response("invoke_model", titan_reply("q", 1536), titan_call("q", model))
    embedder = BedrockTitanEmbedder(model, client=bedrock_client)
    assert embedder.embed_query("q").shape == (1536,)


def test_titan_cuts_long_texts_to_its_input_limit(bedrock_client: Any, bedrock: Stubber) -> None:
    long_text = "x" * (MAX_INPUT_CHARS + 10)
    bedrock.add_response(
        "invoke_model",
        titan_reply("q", 1024),
        titan_call("x" * MAX_INPUT_CHARS, dimensions=1024, normalize=True),
    )
    BedrockTitanEmbedder(client=bedrock_client).embed_query(long_text)


def test_titan_errors_are_embedding_unavailable(bedrock_client: Any, bedrock: Stubber) -> None:
    bedrock.add_client_error(
        "invoke_model", service_error_code="ThrottlingException", http_status_code=429
    )
    with pytest.raises(EmbeddingUnavailable, match="ThrottlingException"):
        BedrockTitanEmbedder(client=bedrock_client).embed_query("q")
    bedrock.add_response(
        "invoke_model", {"body": stream(b"not json"), "contentType": "application/json"}
    )
    with pytest.raises(EmbeddingUnavailable, match="no JSON"):
        BedrockTitanEmbedder(client=bedrock_client).embed_query("q")


def test_titan_rejects_dimensions_it_does_not_offer() -> None:
    with pytest.raises(ConfigurationError, match="Titan v2"):
        BedrockTitanEmbedder(dimensions=300)
    with pytest.raises(ConfigurationError, match="1536"):
        BedrockTitanEmbedder("amazon.titan-embed-text-v1", dimensions=512)


class ConcurrentTitan:
    """A bedrock-runtime stand-in that answers out of order from several threads."""

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.texts: list[str] = []
        self.lock = threading.Lock()
        self.gate = threading.Barrier(4, timeout=5)

    def invoke_model(self, **params: Any) -> dict[str, Any]:
        text = json.loads(params["body"])["inputText"]
        with self.lock:
            self.threads.add(threading.get_ident())
            self.texts.append(text)
        self.gate.wait()  # four calls in flight at once, or the test times out
        return {"body": stream({"embedding": raw_vector(text, 256)})}


def test_titan_calls_run_in_parallel_and_keep_the_callers_order() -> None:
    client = ConcurrentTitan()
    texts = [f"text {i}" for i in range(8)]
    embedder = BedrockTitanEmbedder(dimensions=256, client=client, concurrency=4)
    vectors = embedder.embed_documents(texts)
    assert sorted(client.texts) == sorted(texts) and len(client.threads) == 4
    assert_embeds(embedder, texts, vectors)


# --- SageMaker ------------------------------------------------------------------------------------------


ENDPOINT = "docket-embedder"


@pytest.fixture(scope="module")
def sagemaker_client() -> Any:
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


@pytest.fixture
def sagemaker(sagemaker_client: Any) -> Iterator[Stubber]:
    with Stubber(sagemaker_client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def tei_call(texts: list[str]) -> dict[str, Any]:
    return {
        "EndpointName": ENDPOINT,
        "ContentType": "application/json",
        "Accept": "application/json",
        "Body": JsonBody({"inputs": texts, "normalize": True, "truncate": True}),
    }


def tei_reply(texts: list[str], wrap: bool = False) -> dict[str, Any]:
    vectors = [raw_vector(text) for text in texts]
    return {"Body": stream({"embeddings": vectors} if wrap else vectors)}


def test_sagemaker_sends_tei_batches_of_the_configured_size(
    sagemaker_client: Any, sagemaker: Stubber
) -> None:
    # Given a TEI endpoint taking two texts a request
    for batch in (TEXTS[0:2], TEXTS[2:4], TEXTS[4:]):
        sagemaker.add_response("invoke_endpoint", tei_reply(batch), tei_call(batch))
    embedder = SageMakerEmbedder(
        ENDPOINT,
        model="BAAI/bge-small-en-v1.5",
        dimensions=4,
        client=sagemaker_client,
        batch_size=2,
    )
    # When five documents are embedded / Then three requests went out, vectors in order
    assert_embeds(embedder, TEXTS, embedder.embed_documents(TEXTS))
    assert embedder.model.name == "sagemaker:BAAI/bge-small-en-v1.5"


def test_sagemaker_accepts_wrapped_vectors_and_names_the_endpoint_by_default(
    sagemaker_client: Any, sagemaker: Stubber
) -> None:
    sagemaker.add_response("invoke_endpoint", tei_reply(["q"], wrap=True), tei_call(["q"]))
    embedder = SageMakerEmbedder(ENDPOINT, dimensions=4, client=sagemaker_client)
    np.testing.assert_allclose(embedder.embed_query("q"), unit(raw_vector("q")), rtol=1e-6)
    assert embedder.model.name == f"sagemaker:{ENDPOINT}"


def test_sagemaker_errors_are_embedding_unavailable(
    sagemaker_client: Any, sagemaker: Stubber
) -> None:
    embedder = SageMakerEmbedder(ENDPOINT, dimensions=4, client=sagemaker_client)
    sagemaker.add_client_error(
        "invoke_endpoint", service_error_code="ModelError", http_status_code=424
    )
    with pytest.raises(EmbeddingUnavailable, match="ModelError"):
        embedder.embed_query("q")
    sagemaker.add_response("invoke_endpoint", {"Body": stream({"error": "overloaded"})})
    with pytest.raises(EmbeddingUnavailable, match="no list of vectors"):
        embedder.embed_query("q")


def test_sagemaker_needs_a_dimension_for_an_unknown_model() -> None:
    with pytest.raises(ConfigurationError, match="DOCKET_EMBEDDING_DIMENSIONS"):
        SageMakerEmbedder(ENDPOINT, model="my-own-model")


# --- the factory ----------------------------------------------------------------------------------------


@pytest.fixture
def fresh_embedders() -> Iterator[None]:
    reset_embedders()
    yield
    reset_embedders()


def test_factory_builds_each_hosted_provider(
    fresh_embedders: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "docket.providers.secrets.provider_keys",
        lambda settings: {"openai_api_key": "from-secret", "cohere_api_key": "co"},
    )
    openai = get_embedder(Settings(embedding_provider="openai", provider_secret_name="s"))
    assert isinstance(openai, OpenAIEmbedder)
    assert openai.model.name == "openai:text-embedding-3-small" and openai.model.dimension == 1536
    assert openai._api_key == "from-secret"
    cohere = get_embedder(Settings(embedding_provider="cohere", embedding_dimensions=None))
    assert isinstance(cohere, CohereEmbedder) and cohere.model.name == "cohere:embed-english-v3.0"
    titan = get_embedder(Settings(embedding_provider="bedrock", embedding_dimensions=512))
    assert isinstance(titan, BedrockTitanEmbedder)
    assert (titan.model.name, titan.model.dimension) == (
        "bedrock:amazon.titan-embed-text-v2:0",
        512,
    )
    sagemaker = get_embedder(
        Settings(
            embedding_provider="sagemaker", embedding_endpoint=ENDPOINT, embedding_batch_size=16
        )
    )
    assert isinstance(sagemaker, SageMakerEmbedder) and sagemaker.batch_size == 16
    assert sagemaker.model.name == "sagemaker:sentence-transformers/all-MiniLM-L6-v2"
    assert sagemaker.model.dimension == 384
    # a named model is kept; a changed dimension is another embedder
    named = get_embedder(
        Settings(embedding_provider="openai", embedding_model="text-embedding-3-large")
    )
    assert named.model.name == "openai:text-embedding-3-large"
    assert (
        get_embedder(Settings(embedding_provider="openai", embedding_dimensions=256)) is not openai
    )


def test_factory_needs_a_sagemaker_endpoint(fresh_embedders: None) -> None:
    with pytest.raises(ConfigurationError, match="DOCKET_EMBEDDING_ENDPOINT"):
        get_embedder(Settings(embedding_provider="sagemaker"))
