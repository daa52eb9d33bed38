"""The process's rebuild service with its real adapters, built on first use."""

from __future__ import annotations

from functools import cache
from typing import Any

from docket.config import get_settings
from docket.errors import ConfigurationError
from docket.generations.rebuild import RebuildService


@cache
def get_rebuild_service() -> RebuildService:
    from docket.generations.jobs import LocalJobs, SageMakerJobs, StepFunctionsExecutions
    from docket.generations.live import registry_for
    from docket.store.dynamodb import DynamoChunkStore
    from docket.store.s3 import S3BlobStore

    settings = get_settings()
    registry = registry_for(settings)
    if registry is None:
        raise ConfigurationError("index generations need DOCKET_GENERATIONS_TABLE")
    service: RebuildService
    jobs: Any

    def on_event(event: dict[str, Any]) -> None:
        service.on_job_event(event)

    jobs = LocalJobs(on_event) if settings.reembed_job_runner == "local" else None
    service = RebuildService(
        settings,
        registry,
        DynamoChunkStore(settings.chunks_table),
        S3BlobStore(),
        jobs or _Lazy(lambda: SageMakerJobs(settings)),
        StepFunctionsExecutions(settings.reembed_state_machine_arn),
    )
    return service


class _Lazy:
    """SageMaker's settings are checked when a job starts, not when the service is built (status
    and rollback need none of them)."""

    def __init__(self, build: Any) -> None:
        self._build = build

    def start(self, **kwargs: Any) -> None:
        self._build().start(**kwargs)
