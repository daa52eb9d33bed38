"""The embedding job and the state machine, behind small ports.

- ``EmbedJobs.start`` starts the batch job of a generation: a SageMaker Batch Transform job on
  AWS, the job's own entry point run in-process locally (moto only records SageMaker jobs). Either
  way its end arrives as SageMaker's EventBridge state-change event (``job_event``), which
  resumes the waiting state machine through its task token.
- ``Executions`` starts rebuild executions and answers task tokens (Step Functions; moto's
  locally).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from docket.config import Settings
from docket.errors import ConfigurationError

log = logging.getLogger(__name__)

JOB_EVENT = "SageMaker Transform Job State Change"
# what SageMaker reports; "Completed" resumes the build, the others fail it
ENDED = ("Completed", "Failed", "Stopped")


def job_event(name: str, status: str, reason: str | None = None) -> dict[str, Any]:
    """The EventBridge event SageMaker sends when a transform job changes state (the fields we
    read)."""
    detail: dict[str, Any] = {"TransformJobName": name, "TransformJobStatus": status}
    if reason:
        detail["FailureReason"] = reason
    return {"source": "aws.sagemaker", "detail-type": JOB_EVENT, "detail": detail}


class EmbedJobs(Protocol):
    def start(self, *, name: str, settings: Settings, input_uri: str, output_uri: str) -> None: ...


class Executions(Protocol):
    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Start a rebuild execution; its ARN."""
        ...

    def running(self, arn: str) -> bool: ...

    def succeed(self, token: str, output: dict[str, Any]) -> None: ...

    def fail(self, token: str, error: str, cause: str) -> None: ...


class SageMakerJobs:
    """A Batch Transform job: JSON lines in, JSON lines out, one record per line, on the GPU
    instance type of the settings, running the embedding container (jobs/embed)."""

    def __init__(self, settings: Settings) -> None:
        missing = [
            name
            for name in ("reembed_job_image", "reembed_job_model_data", "reembed_job_role_arn")
            if not getattr(settings, name)
        ]
        if missing:
            raise ConfigurationError(
                "a SageMaker re-embedding job needs "
                + ", ".join(f"DOCKET_{m.upper()}" for m in missing)
            )
        self.settings = settings

    def start(self, *, name: str, settings: Settings, input_uri: str, output_uri: str) -> None:
        from docket import aws

        sm = aws.client("sagemaker")
        s = self.settings
        environment = {
            "DOCKET_EMBEDDING_MODEL": settings.embedding_model,
            "DOCKET_EMBEDDING_PRECISION": settings.embedding_precision,
            "DOCKET_EMBEDDING_BATCH_SIZE": str(settings.embedding_batch_size),
        }
        sm.create_model(
            ModelName=name,
            ExecutionRoleArn=s.reembed_job_role_arn,
            PrimaryContainer={
                "Image": s.reembed_job_image,
                "ModelDataUrl": s.reembed_job_model_data,
                "Environment": environment,
            },
        )
        sm.create_transform_job(
            TransformJobName=name,
            ModelName=name,
            BatchStrategy="MultiRecord",
            MaxPayloadInMB=6,
            TransformInput={
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                "ContentType": "application/jsonlines",
                "SplitType": "Line",
            },
            TransformOutput={
                "S3OutputPath": output_uri,
                "Accept": "application/jsonlines",
                "AssembleWith": "Line",
            },
            TransformResources={
                "InstanceType": s.reembed_job_instance_type,
                "InstanceCount": s.reembed_job_instance_count,
            },
            Environment=environment,
        )


class LocalJobs:
    """The local cloud's job: jobs/embed's transform (docket.embedding.batch_job.transform_dir)
    on the input prefix's objects, its outputs written under the output prefix, then the state
    change event, exactly as SageMaker would send it. Runs on a thread, as the job runs apart
    from the state machine that waits for it."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.on_event = on_event
        self.threads: list[threading.Thread] = []

    def start(self, *, name: str, settings: Settings, input_uri: str, output_uri: str) -> None:
        thread = threading.Thread(
            target=self._run,
            args=(name, settings, input_uri, output_uri),
            name=f"job-{name}",
            daemon=True,
        )
        self.threads.append(thread)
        thread.start()

    def _run(self, name: str, settings: Settings, input_uri: str, output_uri: str) -> None:
        from docket import aws
        from docket.embedding.batch_job import transform_dir
        from docket.embedding.factory import get_embedder

        s3 = aws.client("s3")
        try:
            bucket, prefix = _split(input_uri)
            out_bucket, out_prefix = _split(output_uri)
            with tempfile.TemporaryDirectory(prefix="docket-job-") as tmp:
                source, target = Path(tmp, "in"), Path(tmp, "out")
                source.mkdir()
                for key in _keys(s3, bucket, prefix):
                    s3.download_file(bucket, key, str(source / key.rsplit("/", 1)[-1]))
                stats = transform_dir(get_embedder(settings), source, target)
                for path in sorted(target.iterdir()):
                    s3.upload_file(str(path), out_bucket, f"{out_prefix}{path.name}")
            log.info("local embedding job done: %s (%s records)", name, stats.records)
            event = job_event(name, "Completed")
        except Exception as exc:  # the job failed: SageMaker would say why in FailureReason
            log.warning("local embedding job %s failed: %s", name, exc)
            event = job_event(name, "Failed", f"{type(exc).__name__}: {exc}")
        self.on_event(event)


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


class StepFunctionsExecutions:
    def __init__(self, state_machine_arn: str | None) -> None:
        if not state_machine_arn:
            raise ConfigurationError(
                "rebuilds need the re-embed state machine: set DOCKET_REEMBED_STATE_MACHINE_ARN"
            )
        self.arn = state_machine_arn

    def _sfn(self) -> Any:
        from docket import aws

        return aws.client("stepfunctions")

    def start(self, name: str, payload: dict[str, Any]) -> str:
        resp = self._sfn().start_execution(
            stateMachineArn=self.arn, name=name, input=json.dumps(payload)
        )
        return str(resp["executionArn"])

    def running(self, arn: str) -> bool:
        sfn = self._sfn()
        try:
            return str(sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING"
        except sfn.exceptions.ExecutionDoesNotExist:
            return False

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self._sfn().send_task_success(taskToken=token, output=json.dumps(output))

    def fail(self, token: str, error: str, cause: str) -> None:
        self._sfn().send_task_failure(taskToken=token, error=error, cause=cause[:32_000])
