"""Event models parsed at the edge (Powertools parser models, extended where AWS sends variants)."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel, SqsRecordModel
from aws_lambda_powertools.utilities.parser.models.s3 import (
    S3Bucket,
    S3Identity,
    S3Message,
    S3OwnerIdentify,
    S3RecordModel,
    S3RequestParameters,
    S3ResponseElements,
)
from pydantic import BaseModel, Json

from docket.ingest.service import ChunkChange
from docket.models import ChunkRecord, DocumentRecord


class S3TestEvent(BaseModel):
    """S3 sends this once when a notification configuration is saved; there is nothing to do."""

    Event: Literal["s3:TestEvent"]
    Service: str | None = None
    Bucket: str | None = None


class _S3Bucket(S3Bucket):
    ownerIdentity: S3OwnerIdentify | None = None  # type: ignore[assignment]


class _S3Message(S3Message):
    bucket: _S3Bucket


class S3NotificationRecord(S3RecordModel):
    """Powertools' S3 record, tolerant of the fields that S3 emulators leave out."""

    userIdentity: S3Identity | None = None  # type: ignore[assignment]
    requestParameters: S3RequestParameters | None = None  # type: ignore[assignment]
    responseElements: S3ResponseElements | None = None  # type: ignore[assignment]
    s3: _S3Message


class S3Notification(BaseModel):
    Records: list[S3NotificationRecord]


class S3NotificationInSqs(SqsRecordModel):  # type: ignore[override]
    body: Json[S3Notification | S3TestEvent]  # type: ignore[assignment]


def _image(image: Any) -> dict[str, Any] | None:
    if not image:
        return None
    if not isinstance(image, dict):  # Powertools may hand a model; we only take plain images
        image = image.model_dump() if hasattr(image, "model_dump") else dict(image)
    out = dict(image)
    for k, v in out.items():
        if type(v).__name__ == "Decimal":
            out[k] = int(v)
        elif isinstance(v, set):
            out[k] = sorted(v)
    out.pop("pk", None)
    return out


def document_change(
    record: DynamoDBStreamRecordModel,
) -> tuple[str, DocumentRecord | None, DocumentRecord | None]:
    old, new = _image(record.dynamodb.OldImage), _image(record.dynamodb.NewImage)
    return (
        record.eventName,
        DocumentRecord.model_validate(old) if old else None,
        DocumentRecord.model_validate(new) if new else None,
    )


def chunk_change(record: DynamoDBStreamRecordModel) -> ChunkChange:
    old, new = _image(record.dynamodb.OldImage), _image(record.dynamodb.NewImage)
    return ChunkChange(
        record_id=record.dynamodb.SequenceNumber or record.eventID,
        event_name=record.eventName,
        old=ChunkRecord.model_validate(old) if old else None,
        new=ChunkRecord.model_validate(new) if new else None,
    )
