"""What a generation is, and the models a generation can be built with."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from docket.config import Settings
from docket.errors import InvalidRequest


class GenerationState(StrEnum):
    BUILDING = "building"  # being built; chunk changes are written to it too
    LIVE = "live"  # the one every query reads
    RETIRED = "retired"  # was live; kept for rollback until its retention ends
    ABORTED = "aborted"  # a build that failed or was refused by the gate; its index is gone
    DELETED = "deleted"  # retired past retention; its index is gone


class Generation(BaseModel):
    number: int = Field(ge=1)
    model: str  # a name from MODELS
    state: GenerationState
    stage: str | None = None  # the rebuild step it is at (while building)
    reason: str | None = None  # why it was aborted
    execution: str | None = None  # the rebuild's Step Functions execution ARN
    gate: dict[str, Any] | None = None  # the gate's figures, recorded on the generation
    job: dict[str, str] | None = None  # the embedding job: name, and the task token it resumes
    golden: dict[str, str] | None = None  # the golden set the gate measures: dir, tenant, split
    requested_by: str | None = None  # who started the rebuild (cannot approve its cutover too)
    tenant: str | None = None  # theirs: where the cutover's approval is listed
    counts: dict[str, int] = Field(default_factory=dict)
    timings_s: dict[str, float] = Field(default_factory=dict)  # wall time of each stage
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    live_since: datetime | None = None
    retired_at: datetime | None = None


class ModelChoice(BaseModel):
    """A model a generation can be built with, as the Settings fields that select it."""

    name: str
    description: str
    settings: dict[str, Any]
    # True: embedded by the batch job (jobs/embed, a SageMaker GPU job on AWS); False: a hosted
    # model, embedded through its provider adapter by each Load task, shard by shard
    batch_job: bool = True


# The models `docket index rebuild --model` accepts (`docket models list`).
MODELS: dict[str, ModelChoice] = {
    m.name: m
    for m in (
        ModelChoice(
            name="all-MiniLM-L6-v2",
            description="sentence-transformers/all-MiniLM-L6-v2, ONNX fp32 (384 dimensions)",
            settings={
                "embedding_provider": "onnx",
                "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
                "embedding_precision": "fp32",
                "embedding_dimensions": None,
            },
        ),
        ModelChoice(
            name="all-MiniLM-L6-v2-int8",
            description="the same model quantized to int8 per channel: about 1.8x as fast on a "
            "CPU, nDCG@10 within 0.005 of fp32",
            settings={
                "embedding_provider": "onnx",
                "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
                "embedding_precision": "int8",
                "embedding_dimensions": None,
            },
        ),
        *(
            ModelChoice(
                name=f"titan-embed-text-v2-{dims}",
                description=f"Amazon Titan Text Embeddings V2 on Bedrock, {dims} dimensions",
                settings={
                    "embedding_provider": "bedrock",
                    "embedding_model": "amazon.titan-embed-text-v2:0",
                    "embedding_dimensions": dims,
                },
                batch_job=False,
            )
            for dims in (1024, 512, 256)
        ),
        ModelChoice(
            name="cohere-embed-english-v3",
            description="Cohere embed-english-v3.0 (1024 dimensions)",
            settings={
                "embedding_provider": "cohere",
                "embedding_model": "embed-english-v3.0",
                "embedding_dimensions": None,
            },
            batch_job=False,
        ),
        ModelChoice(
            name="openai-text-embedding-3-small",
            description="OpenAI text-embedding-3-small (1536 dimensions)",
            settings={
                "embedding_provider": "openai",
                "embedding_model": "text-embedding-3-small",
                "embedding_dimensions": None,
            },
            batch_job=False,
        ),
    )
}


def model_choice(name: str) -> ModelChoice:
    try:
        return MODELS[name]
    except KeyError:
        raise InvalidRequest(
            f"unknown model {name!r}: one of {', '.join(sorted(MODELS))} (docket models list)"
        ) from None


def model_of(settings: Settings) -> str:
    """The MODELS name that ``settings`` select (the first generation's, before any rebuild)."""
    for choice in MODELS.values():
        if all(getattr(settings, k) == v for k, v in choice.settings.items()):
            return choice.name
    if settings.embedding_provider == "onnx":
        return f"{settings.embedding_model}-{settings.embedding_precision}"
    return f"{settings.embedding_provider}:{settings.embedding_model}"


def generation_settings(base: Settings, generation: Generation | None) -> Settings:
    """``base`` with the fields that ``generation`` fixes: its model and its own index (the
    embedded index's directory, OpenSearch's versioned index). Generation 1 is the index the
    settings name, so a deployment that never rebuilt keeps reading what it always read."""
    if generation is None:
        return base
    update: dict[str, Any] = {}
    if generation.model in MODELS:
        update.update(MODELS[generation.model].settings)
    if generation.number > 1:
        update["index_dir"] = index_dir_of(base.index_dir, generation.number)
        update["opensearch_index_version"] = generation.number
    return base.model_copy(update=update) if update else base


def generation_key(settings: Settings) -> tuple[Any, ...]:
    """What tells one generation's settings from another's: its index and its model's weights."""
    return (settings.index_dir, settings.opensearch_index_version, settings.embedding_precision)


def index_dir_of(index_dir: Path, number: int) -> Path:
    return index_dir if number == 1 else index_dir.with_name(f"{index_dir.name}-g{number}")
