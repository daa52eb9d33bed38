"""Keeps the local cloud's S3 objects and DynamoDB items in the data directory across restarts.

moto holds everything in memory. A snapshot writes the tables (DynamoDB JSON lines) and, per
bucket, a list of its objects (key, metadata, content type and the name of a content-addressed
file under ``objects/``); the lists swap in atomically, and an object is read and written again
only when it changed. The local cloud snapshots soon after each write (``track_writes`` counts
them), busy or not, so a ``kill -9`` loses at most the last seconds; ``restore`` loads the state
before streams and notifications are switched on, so nothing is processed twice, and the start
then repairs what the lost seconds left behind (``docket.ingest.reconcile``, and uploads queued
again by ``requeue_pending``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from docket.wiring import Wiring

log = logging.getLogger("docket.local")
_lock = threading.Lock()
_writes = 0
_tracking = False

# What one snapshot recorded of each object, so the next one reads only what changed:
# (bucket, key) -> ((etag, last modified), line of the bucket's list).
_seen: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
_seen_in = [""]  # the objects folder ``_seen`` describes (a process may run several clouds)


def track_writes() -> None:
    """Count the emulator's writes (DynamoDB items, S3 objects), once per process."""
    global _tracking
    if _tracking:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.s3.models import S3Backend

    def counted(fn: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            global _writes
            _writes += 1
            return fn(*args, **kwargs)

        return write

    for backend, names in (
        (
            DynamoDBBackend,
            ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"),
        ),
        (S3Backend, ("put_object", "copy_object", "delete_object", "delete_objects")),
    ):
        for name in names:
            setattr(backend, name, counted(getattr(backend, name)))
    _tracking = True


def writes() -> int:
    """Writes counted so far (grows; compare two readings)."""
    return _writes


def _objects_dir(state_dir: Path) -> Path:
    return state_dir.with_name(state_dir.name + "-objects")


def snapshot(state_dir: Path, s3: Any, ddb: Any, wiring: Wiring) -> None:
    with _lock:
        tmp = state_dir.with_name(state_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "tables").mkdir(parents=True)
        (tmp / "buckets").mkdir(parents=True)
        objects = _objects_dir(state_dir)
        objects.mkdir(parents=True, exist_ok=True)
        if _seen_in[0] != str(objects):
            _seen.clear()
            _seen_in[0] = str(objects)
        # tables before buckets: an upload the tables missed is still saved, and queued again.
        # Read from the emulator's own structures: its API costs a hundredfold per item.
        for t in wiring.tables:
            with open(tmp / "tables" / f"{t.name}.jsonl", "w") as fh:
                for item in _items(t.name):
                    fh.write(json.dumps(item) + "\n")
        current: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
        for bucket in wiring.buckets:
            with open(tmp / "buckets" / f"{bucket}.jsonl", "w") as fh:
                for key, version in _objects(bucket):
                    seen = _seen.get((bucket, key))
                    if seen is not None and seen[0] == version:
                        line = seen[1]
                    else:
                        try:
                            line = _save_object(objects, s3, bucket, key)
                        except s3.exceptions.NoSuchKey:
                            continue  # deleted since the listing
                    current[(bucket, key)] = (version, line)
                    fh.write(json.dumps(line) + "\n")
        old = state_dir.with_name(state_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if state_dir.exists():
            os.replace(state_dir, old)
        os.replace(tmp, state_dir)
        shutil.rmtree(old, ignore_errors=True)
        _seen.clear()
        _seen.update(current)
        referenced = {line["blob"] for _, line in current.values()}
        for path in objects.iterdir():
            if path.name not in referenced and not path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)


def _items(table: str) -> list[dict[str, Any]]:
    """A table's items as DynamoDB JSON, straight from moto's backend."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_REGION"]]
    items = []
    for entry in list(backend.get_table(table).items.values()):
        for item in list(entry.values()) if isinstance(entry, dict) else [entry]:
            for _ in range(5):
                try:  # an update in another thread may change the item while it is read
                    items.append(item.to_json()["Attributes"])
                    break
                except RuntimeError:
                    continue
    return items


def _objects(bucket: str) -> list[tuple[str, Any]]:
    """(key, version) of a bucket's objects, straight from moto's backend; the version changes
    whenever the object is written again."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    store = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(bucket).keys
    out = []
    for key in list(store.keys()):
        fake = store.get(key)
        if fake is not None:
            out.append((key, (id(fake), str(fake.last_modified), fake.size)))
    return out


def _save_object(objects: Path, s3: Any, bucket: str, key: str) -> dict[str, Any]:
    got = s3.get_object(Bucket=bucket, Key=key)
    body = got["Body"].read()
    blob = hashlib.sha256(body).hexdigest()
    path = objects / blob
    if not path.exists():
        tmp = path.with_name(blob + ".tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)
    return {
        "key": key,
        "metadata": got.get("Metadata") or {},
        "content_type": got.get("ContentType"),
        "blob": blob,
    }


def restore(state_dir: Path, s3: Any, ddb: Any, wiring: Wiring) -> int:
    if not state_dir.is_dir():
        return 0
    _seen.clear()
    _seen_in[0] = str(_objects_dir(state_dir))
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
    objects = _objects_dir(state_dir)
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for bucket in wiring.buckets:
        path = state_dir / "buckets" / f"{bucket}.jsonl"
        if not path.exists():
            continue
        with open(path) as fh:
            for text in fh:
                obj = json.loads(text)
                kwargs: dict[str, Any] = {"Metadata": obj.get("metadata") or {}}
                if obj.get("content_type"):
                    kwargs["ContentType"] = obj["content_type"]
                if "blob" in obj:
                    body = (objects / obj["blob"]).read_bytes()
                else:  # a data directory saved before objects had files of their own
                    body = base64.b64decode(obj["body"])
                s3.put_object(Bucket=bucket, Key=obj["key"], Body=body, **kwargs)
                lines[(bucket, obj["key"])] = {k: v for k, v in obj.items() if k != "body"}
                lines[(bucket, obj["key"])]["blob"] = hashlib.sha256(body).hexdigest()
                restored += 1
        for key, version in _objects(bucket):
            entry = lines.get((bucket, key))
            if entry is not None and (objects / entry["blob"]).exists():
                _seen[(bucket, key)] = (version, entry)
    log.info("restored %d items and objects from %s", restored, state_dir)
    return restored


def requeue_pending(cloud: Any, s3: Any, ddb: Any) -> int:
    """Uploads a stop cut short get their S3 event again: documents still pending, and objects
    whose document record the last snapshot did not catch."""
    from docket import aws
    from docket.config import get_settings
    from docket.ingest.keys import parse_key

    settings = get_settings()
    sqs_url = cloud.queue_urls.get(cloud.wiring.notifications[0].queue)
    if not sqs_url:
        return 0
    status: dict[tuple[str, str], str] = {}
    for page in ddb.get_paginator("scan").paginate(
        TableName=settings.documents_table,
        ProjectionExpression="tenant, document_id, #s",
        ExpressionAttributeNames={"#s": "status"},
    ):
        for item in page["Items"]:
            key = (item["tenant"]["S"], item["document_id"]["S"])
            status[key] = item.get("status", {}).get("S", "")
    n = 0
    prefix = cloud.wiring.notifications[0].prefix
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.documents_bucket, Prefix=prefix
    ):
        for obj in page.get("Contents", []):
            try:
                tenant, _, document_id = parse_key(obj["Key"])
            except Exception:
                continue  # not a document's key: the pipeline ignores it too
            if status.get((tenant, document_id), "pending") != "pending":
                continue
            aws.client("sqs").send_message(
                QueueUrl=sqs_url,
                MessageBody=json.dumps(
                    _s3_event(settings.documents_bucket, obj["Key"], cloud.region)
                ),
            )
            n += 1
    if n:
        log.info("re-queued %d uploads left unfinished", n)
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
