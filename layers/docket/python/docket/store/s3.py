"""S3 blob store and the SQS dead-letter sink."""

from __future__ import annotations

import json
from typing import Any

from docket import aws
from docket.errors import StoreUnavailable


class S3BlobStore:
    @property
    def _s3(self) -> Any:
        return aws.client("s3")

    def get(self, bucket: str, key: str) -> bytes:
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise StoreUnavailable(f"s3 get s3://{bucket}/{key}: {exc}") from exc

    def put(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        except Exception as exc:
            raise StoreUnavailable(f"s3 put s3://{bucket}/{key}: {exc}") from exc

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            resp = self._s3.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreUnavailable(f"s3 head s3://{bucket}/{key}: {exc}") from exc
        return {
            "size": int(resp.get("ContentLength", 0)),
            "metadata": resp.get("Metadata") or {},
            "content_type": resp.get("ContentType"),
        }

    def delete(self, bucket: str, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise StoreUnavailable(f"s3 delete s3://{bucket}/{key}: {exc}") from exc


class SqsDeadLetterSink:
    """Sends a failed record with its typed reason to the ingestion dead-letter queue."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, payload: dict[str, Any], *, reason_code: str, reason: str) -> None:
        try:
            aws.client("sqs").send_message(
                QueueUrl=self.queue_url,
                MessageBody=json.dumps(
                    {"reason_code": reason_code, "reason": reason, "record": payload}
                ),
                MessageAttributes={
                    "reason_code": {"DataType": "String", "StringValue": reason_code},
                    "reason": {"DataType": "String", "StringValue": reason[:1000] or "-"},
                },
            )
        except Exception as exc:
            raise StoreUnavailable(f"sqs send to dead-letter queue: {exc}") from exc
