"""Validated configuration: one pydantic settings model, read from DOCKET_* environment variables."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from docket.sync.config import SyncSource, parse_sources


def _name_set(value: object) -> object:
    """A set of names from the environment: a JSON list ('["a", "b"]') or comma-separated (a,b)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return frozenset(json.loads(text))
        return frozenset(name.strip() for name in text.split(",") if name.strip())
    return value


NameSet = Annotated[frozenset[str], NoDecode, BeforeValidator(_name_set)]


def _json_map(value: object) -> object:
    """A mapping from the environment: a JSON object ('{"acme": 100000}'); empty means none."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else {}
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCKET_", extra="ignore")

    # where we run
    region: str = "us-east-1"
    stage: str = "local"
    log_level: str = "INFO"

    # resources (names match infra/constants and the local cloud's wiring)
    documents_bucket: str = "docket-documents"
    text_bucket: str = "docket-text"
    documents_table: str = "docket-documents"
    chunks_table: str = "docket-chunks"
    ingest_dlq_url: str | None = None
    # the S3 endpoint that presigned upload URLs point at (the local cloud's S3 server)
    s3_public_endpoint: str | None = None
    upload_url_ttl_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)

    # ingestion
    max_file_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    chunk_size_tokens: int = Field(default=256, ge=32, le=512)
    chunk_overlap_tokens: int = Field(default=32, ge=0, le=128)
    # a document of at most this many tokens stays one chunk (0: always cut at chunk_size)
    chunk_whole_document_tokens: int = Field(default=0, ge=0, le=2048)
    # the embedding model's tokenizer.json (file or folder); default: the model package's
    tokenizer_path: Path | None = None
    # "headers": title and section in front of each chunk; "llm" adds a sentence a chat model
    # (llm_provider) writes to situate the chunk in its document (docket.chunking.contextualize)
    contextual_chunks: Literal["headers", "llm"] = "headers"
    contextual_max_document_tokens: int = Field(default=32_000, ge=1_000, le=200_000)
    contextual_concurrency: int = Field(default=4, ge=1, le=32)  # model calls in flight

    # embeddings
    # "onnx" (local), "hash" (a test fake), or hosted: OpenAI, Cohere, Bedrock Titan, a SageMaker
    # endpoint (embedding_endpoint); embedding_model names the model for hosted providers
    embedding_provider: Literal["onnx", "hash", "openai", "cohere", "bedrock", "sagemaker"] = "onnx"
    embedding_endpoint: str | None = None
    embedding_dimensions: int | None = Field(default=None, ge=1, le=8192)
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    # the local model's weights: "int8" is its dynamically quantized generation, about 1.8x as
    # fast on a CPU with nDCG@10 within 0.005 of fp32 (docs/retrieval.md); each is its own model
    # version, so an index built with one is never queried with the other
    embedding_precision: Literal["fp32", "int8"] = "int8"
    embedding_batch_size: int = Field(default=32, ge=1, le=256)
    # padded tokens per model call for the local model (default: batch_size full-length texts);
    # texts are sorted by length, so short ones go through in larger batches
    embedding_batch_tokens: int | None = Field(default=None, ge=1, le=262_144)
    model_dir: Path | None = None
    embedding_threads: int = Field(default=0, ge=0)

    # search
    search_backend: Literal["embedded", "opensearch"] = "embedded"
    # OpenSearch (search_backend="opensearch", docket.search.opensearch): the domain's endpoint;
    # SigV4 on AWS ("es" for a domain), basic auth or none against a local test server
    opensearch_endpoint: str | None = None
    opensearch_auth: Literal["sigv4", "basic", "none"] = "sigv4"
    opensearch_username: str | None = None
    opensearch_password: str | None = None
    opensearch_index_prefix: str = (
        "chunks"  # indexes chunks-{model}-v{n}, aliases chunks-{model}-{read|write}
    )
    opensearch_index_version: int = Field(default=1, ge=1)
    opensearch_shards: int = Field(default=1, ge=1, le=64)
    opensearch_replicas: int = Field(default=1, ge=0, le=8)
    # "client": BM25 and k-NN queries fused here (the same fusion as the embedded index);
    # "server": one hybrid query with the RRF score-ranker search pipeline (OpenSearch 2.19+)
    opensearch_hybrid: Literal["client", "server"] = "client"
    opensearch_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    opensearch_max_retries: int = Field(default=5, ge=0, le=20)  # bulk 429s, with backoff
    index_dir: Path = Path(".docket/index")
    # fusion of BM25 and k-NN: "dbsf" (distribution-based score fusion) or "rrf"; chosen on
    # SciFact train, see docs/retrieval.md
    fusion_method: Literal["dbsf", "rrf"] = "dbsf"
    fusion_bm25_weight: float = Field(default=0.5, ge=0.0, le=1.0)  # k-NN weighs 1 - this
    # when 1..N documents contain every query term, they rank first (0: off)
    fusion_coordination_max_documents: int = Field(default=10, ge=0, le=100)
    # per-query weights: BM25's weight falls as k-NN's best cosines rise above the pivot (None:
    # the embedding model's calibrated pivot, docket.search.fusion.DENSE_PIVOTS; slope 0: fixed
    # weights). Explicit settings win over what `docket eval tune` stored with the index.
    fusion_dense_pivot: float | None = Field(default=None, ge=-1.0, le=1.0)
    fusion_dense_slope: float = Field(default=2.0, ge=0.0, le=20.0)
    fusion_min_weight: float = Field(default=0.1, ge=0.0, le=0.5)
    rrf_k: int = Field(default=60, ge=1)
    candidate_k: int = Field(default=100, ge=1, le=1000)

    # index generations (docket.generations): the live one is read from this table; None (unit
    # tests) means the settings' own model and index are the only generation
    generations_table: str | None = None
    generation_cache_seconds: float = Field(default=5.0, ge=0.0, le=300.0)  # query path's cache
    generation_retention_days: float = Field(default=7.0, ge=0.0, le=365.0)  # kept for rollback
    reembed_state_machine_arn: str | None = None  # set by the deployment / the local cloud
    reembed_shard_chunks: int = Field(default=2000, ge=1, le=1_000_000)  # lines per input shard
    # "sagemaker": a Batch Transform job; "local": the job's entry point run in-process on the
    # same S3 prefixes (the local cloud: moto only records SageMaker jobs)
    reembed_job_runner: Literal["sagemaker", "local"] = "sagemaker"
    reembed_job_image: str | None = None  # the embedding container's image URI
    reembed_job_model_data: str | None = None  # s3://... model.tar.gz (model + jobs/embed code)
    reembed_job_role_arn: str | None = None
    reembed_job_instance_type: str = "ml.g5.xlarge"
    reembed_job_instance_count: int = Field(default=1, ge=1, le=20)
    reembed_job_timeout_seconds: int = Field(default=6 * 3600, ge=60, le=5 * 24 * 3600)
    # the gate: the new generation must keep nDCG@10 and Recall@50 on the golden set within these
    reembed_gate_ndcg_drop: float = Field(default=0.01, ge=0.0, le=1.0)
    reembed_gate_recall_drop: float = Field(default=0.005, ge=0.0, le=1.0)
    # how long the gate waits for chunk writes still in flight before it counts a difference
    # a person approves the cutover (the agent's approval mechanism: Slack, a signed e-mail link,
    # the API), shown the gate's figures; off: the gate alone decides
    reembed_approval: bool = False
    reembed_gate_settle_seconds: float = Field(default=30.0, ge=0.0, le=900.0)
    # the knowledge base's golden set (a BEIR folder, docket eval tune's format) and its tenant
    reembed_golden_dir: Path | None = None
    reembed_golden_tenant: str | None = None

    # reranking (docket.rerank.factory reads these; "none" keeps the fused order)
    rerank_provider: Literal["none", "cohere", "bedrock", "sagemaker"] = "none"
    # Cohere: a model name (default rerank-v3.5); Bedrock: a model ARN, or a model id that is
    # expanded to a foundation-model ARN in ``region``
    rerank_model: str | None = None
    rerank_endpoint: str | None = None  # SageMaker: the endpoint name
    rerank_top_n_candidates: int = Field(default=50, ge=1, le=1000)  # fused hits sent to rerank
    rerank_max_chars: int = Field(default=4000, ge=64, le=32000)  # per document sent to rerank
    # locally from DOCKET_COHERE_API_KEY; on AWS from the provider secret (providers/secrets.py)
    cohere_api_key: str | None = None

    # answers
    answerer: Literal["extractive", "llm"] = "extractive"
    # answerability probability below which the answer is "not found" (fit on SciFact train,
    # bench/calibrate_answerer.py; 0.55 trades answered claims for abstention >= 0.80)
    min_answer_score: float = 0.50
    # the chat model behind answerer="llm": "fake" echoes the extractive answer through the LLM
    # path (offline, for the local cloud); real providers arrive with their adapters
    llm_provider: Literal["none", "fake", "anthropic", "openai", "bedrock", "cohere"] = "none"
    llm_model: str | None = None  # the provider's model id (default: the provider's own default)
    # routing per task type (docket.providers.routing): a JSON object, e.g.
    # {"qa": {"provider": "anthropic", "model": "...", "fallback": {"provider": "bedrock",
    #  "model": "..."}}, "agent": {...}, "contextualise": {...}}; a missing task type uses
    # llm_provider/llm_model (qa, contextualise) or agent_model_provider (agent)
    model_routes: Annotated[dict[str, Any], NoDecode, BeforeValidator(_json_map)] = Field(
        default_factory=dict
    )
    openai_base_url: str | None = None  # any OpenAI-compatible server (vLLM...)
    openai_api_key: str | None = None
    anthropic_api_key: str | None = None
    # on AWS the keys come from this Secrets Manager secret (a JSON object with the keys
    # openai_api_key, anthropic_api_key, cohere_api_key), read through Powertools parameters
    provider_secret_name: str | None = None
    provider_timeout_seconds: float = Field(default=60.0, gt=0, le=900)
    provider_max_retries: int = Field(default=2, ge=0, le=10)  # on 429 and 5xx only, with jitter
    provider_breaker_failures: int = Field(default=5, ge=1, le=100)  # consecutive, to open
    provider_breaker_cooldown_seconds: float = Field(default=30.0, gt=0, le=3600)
    # USD per million tokens by model id: {"model": [input, output]} (cost on each call)
    model_prices: Annotated[dict[str, Any], NoDecode, BeforeValidator(_json_map)] = Field(
        default_factory=dict
    )
    # tenants whose answers keep only verified, cited sentences (DOCKET_STRICT_CITATION_TENANTS:
    # a JSON list or comma-separated)
    strict_citation_tenants: NameSet = frozenset()
    answer_max_sources: int = Field(default=8, ge=1, le=50)  # hits numbered in the LLM prompt

    # the agent (docket.agent): a Step Functions loop of model calls and tool calls
    agent_table: str = "docket-agent"
    agent_bucket: str = "docket-agent"
    idempotency_table: str = "docket-idempotency"
    agent_state_machine_arn: str | None = None  # set by the deployment / the local cloud
    # "planner": the deterministic offline planner (docket.agent.planner), no key, no network;
    # real tool-calling providers arrive with their adapters
    agent_model_provider: Literal["planner", "anthropic", "openai", "bedrock", "cohere"] = "planner"
    agent_model: str | None = None
    agent_max_steps: int = Field(default=12, ge=1, le=100)  # model calls per task
    agent_max_output_tokens: int = Field(default=2048, ge=16, le=64_000)  # per model reply
    # tokens (input + output) a tenant may spend per calendar month (UTC) on agent tasks;
    # DOCKET_AGENT_TOKEN_BUDGETS overrides it per tenant: a JSON object {"tenant": tokens}
    agent_token_budget: int = Field(default=5_000_000, ge=0)
    agent_token_budgets: Annotated[dict[str, int], NoDecode, BeforeValidator(_json_map)] = Field(
        default_factory=dict
    )
    # USD per million tokens, for the cost on each step (0 for the offline planner)
    agent_input_price_per_mtok: float = Field(default=0.0, ge=0.0)
    agent_output_price_per_mtok: float = Field(default=0.0, ge=0.0)
    tool_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    tool_result_max_chars: int = Field(default=20_000, ge=1_000, le=1_000_000)  # shown to the model

    # approvals of high-risk tool calls
    approval_timeout_seconds: int = Field(default=3 * 24 * 3600, ge=60, le=365 * 24 * 3600)
    approval_link_secret: str = "docket-local-approval-link-secret-change-me"
    approval_base_url: str = "http://127.0.0.1:8787"  # where e-mailed approval links point
    approval_emails: NameSet = frozenset()  # approvers who get an e-mailed link
    # four eyes: whoever started a task cannot approve its calls, except for the tools listed
    # here (denying one's own call is always allowed)
    approval_self_approve_tools: NameSet = frozenset()
    approval_slack_channel: str | None = None  # a channel that gets Approve/Deny buttons
    slack_signing_secret: str = "docket-local-slack-signing-secret-change-me"
    slack_bot_token: str | None = None
    # on AWS the secrets above come from Secrets Manager at run time (docket.secrets), never
    # from the environment: the link key is a plain secret; the Slack one holds signing_secret
    # and bot_token
    approval_link_secret_name: str | None = None
    slack_secret_name: str | None = None
    slack_sink_path: Path | None = None  # local cloud: Slack messages go to this JSON-lines file
    email_sender: str = "docket@example.com"
    email_outbox_dir: Path | None = None  # local cloud: one .eml file per message sent
    # tool allow-lists (comma-separated or JSON lists)
    http_allowed_hosts: NameSet = frozenset()
    query_tables: NameSet = frozenset()
    # query_table returns only the caller's rows: those whose tenant attribute is the caller's
    # tenant and, when the row has a groups attribute with groups in it, that share one of the
    # caller's groups; a row without the tenant attribute is never returned. Tables every tenant
    # may read whole must be listed in query_tables_shared too.
    query_table_tenant_attribute: str = "tenant"
    query_table_groups_attribute: str | None = "acl_groups"
    query_tables_shared: NameSet = frozenset()

    # auth: the local cloud signs development tokens with this secret (HS256); on AWS the
    # authorizer function checks the identity provider's tokens against its published keys
    # (token_jwks_url, else the issuer's OpenID discovery document). Audiences: comma-separated.
    auth_mode: Literal["local", "jwt_authorizer"] = "local"
    dev_token_secret: str = "docket-local-development-secret-change-me"
    token_issuer: str = "docket-local"
    token_audience: str = "docket"
    token_jwks_url: str | None = None
    # API keys (docket.access.keys); without a table, API keys are refused
    keys_table: str | None = None
    # rate limits and quotas (docket.access.limits): token buckets in this table, shared by all
    # instances; without one, each process keeps its own (tests and one-process tools only).
    # Requests per minute on POST /query and on /mcp, for a tenant and for each of its API keys
    # (each its own bucket; 0: no limit), and bytes a tenant may upload per day.
    limits_table: str | None = None
    query_rpm: int = Field(default=1200, ge=0)
    mcp_rpm: int = Field(default=1200, ge=0)
    key_query_rpm: int = Field(default=600, ge=0)
    key_mcp_rpm: int = Field(default=600, ge=0)
    ingest_bytes_per_day: int = Field(default=10 * 1024**3, ge=0)
    key_ingest_bytes_per_day: int = Field(default=0, ge=0)

    # change data capture (docket.sync): the source tables, as a JSON list of docket.sync.config
    # SyncSource objects; the state of each synced row; the backfill's state machine
    sync_sources: Annotated[list[SyncSource], NoDecode, BeforeValidator(parse_sources)] = Field(
        default_factory=list
    )
    sync_table: str = "docket-sync"
    sync_backfill_state_machine_arn: str | None = None  # set by the deployment / the local cloud
    sync_backfill_segments: int = Field(default=4, ge=1, le=64)
    # how the backfill reads the table: a segmented Scan, or (on AWS, where point-in-time
    # recovery is on) an export to S3 under sync_export_prefix of the text bucket, which reads
    # none of the table's capacity
    sync_backfill_method: Literal["scan", "export"] = "scan"
    sync_export_prefix: str = "sync-exports/"

    # the answer cache (docket.cache): off unless a tenant is listed ("*": every tenant); entries
    # live in this table (else in the process), expire this long after they are stored, and a
    # semantic hit needs this cosine similarity (calibrated: bench/bench_cache.py)
    answer_cache_tenants: NameSet = frozenset()
    answer_cache_table: str | None = None
    answer_cache_ttl_seconds: int = Field(default=3600, ge=1, le=7 * 86_400)
    answer_cache_similarity: float = Field(default=0.90, ge=0.5, le=1.0)
    answer_cache_candidates: int = Field(default=500, ge=1, le=5000)

    @model_validator(mode="after")
    def _overlap_fits(self) -> Settings:
        if self.chunk_overlap_tokens > self.chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must be at most half of chunk_size_tokens")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()
