"""Keeps the local cloud's S3 objects and DynamoDB items in the data directory across restarts.

moto holds everything in memory; a snapshot writes the tables (DynamoDB JSON lines) and the
buckets (one file per object, plus its metadata) atomically, and ``restore`` loads them before
streams and notifications are switched on, so nothing is processed twice. Documents still
``pending`` after a restart are queued again.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from docket.local.wiring import Wiring

log = logging.getLogger("docket.local")
_lock = threading.Lock()


def snapshot(state_dir: Path, s3: Any, ddb: Any, wiring: Wiring) -> None:
    with _lock:
        tmp = state_dir.with_name(state_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "tables").mkdir(parents=True)
        (tmp / "buckets").mkdir(parents=True)
        for t in wiring.tables:
            with open(tmp / "tables" / f"{t.name}.jsonl", "w") as fh:
                for page in ddb.get_paginator("scan").paginate(TableName=t.name):
                    for item in page["Items"]:
                        fh.write(json.dumps(item) + "\n")
        for bucket in wiring.buckets:
            with open(tmp / "buckets" / f"{bucket}.jsonl", "w") as fh:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for obj in page.get("Contents", []):
                        got = s3.get_object(Bucket=bucket, Key=obj["Key"])
                        fh.write(
                            json.dumps(
                                {
                                    "key": obj["Key"],
                                    "metadata": got.get("Metadata") or {},
                                    "content_type": got.get("ContentType"),
                                    "body": base64.b64encode(got["Body"].read()).decode(),
                                }
                            )
                            + "\n"
                        )
        old = state_dir.with_name(state_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if state_dir.exists():
            os.replace(state_dir, old)
        os.replace(tmp, state_dir)
        shutil.rmtree(old, ignore_errors=True)


def restore(state_dir: Path, s3: Any, ddb: Any, wiring: Wiring) -> int:
    if not state_dir.is_dir():
        return 0
    restored = 0
    for t in wiring.tables:
        path = state_dir / "tables" / f"{t.name}.jsonl"
        if not path.exists():
            continue
        batch: list[dict[str, Any]] = []
        with open(path) as fh:
            for line in fh:
                batch.append({"PutRequest": {"Item": json.loads(line)}})
                if len(batch) == 25:
                    ddb.batch_write_item(RequestItems={t.name: batch})
                    restored += len(batch)
                    batch = []
        if batch:
            ddb.batch_write_item(RequestItems={t.name: batch})
            restored += len(batch)
    for bucket in wiring.buckets:
        path = state_dir / "buckets" / f"{bucket}.jsonl"
        if not path.exists():
            continue
        with open(path) as fh:
            for line in fh:
                obj = json.loads(line)
                kwargs: dict[str, Any] = {"Metadata": obj.get("metadata") or {}}
                if obj.get("content_type"):
                    kwargs["ContentType"] = obj["content_type"]
                s3.put_object(
                    Bucket=bucket, Key=obj["key"], Body=base64.b64decode(obj["body"]), **kwargs
                )
                restored += 1
    log.info("restored %d items and objects from %s", restored, state_dir)
    return restored


def requeue_pending(cloud: Any, s3: Any, ddb: Any) -> int:
    """Documents left pending by a stop mid-pipeline get their S3 event again."""
    from docket.config import get_settings

    settings = get_settings()
    sqs_url = cloud.queue_urls.get(cloud.wiring.notifications[0].queue)
    if not sqs_url:
        return 0
    from docket import aws

    n = 0
    for page in ddb.get_paginator("scan").paginate(
        TableName=settings.documents_table,
        FilterExpression="#s = :p",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":p": {"S": "pending"}},
    ):
        for item in page["Items"]:
            key = item.get("s3_key", {}).get("S")
            if not key:
                continue
            try:
                s3.head_object(Bucket=settings.documents_bucket, Key=key)
            except Exception:
                continue
            aws.client("sqs").send_message(
                QueueUrl=sqs_url,
                MessageBody=json.dumps(_s3_event(settings.documents_bucket, key, cloud.region)),
            )
            n += 1
    if n:
        log.info("re-queued %d pending documents", n)
    return n


def _s3_event(bucket: str, key: str, region: str) -> dict[str, Any]:
    from datetime import UTC, datetime
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "local"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "local", "x-amz-id-2": "local"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "requeue",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "local"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key),
                        "size": 0,
                        "eTag": "requeued",
                        "sequencer": "0",
                    },
                },
            }
        ]
    }
