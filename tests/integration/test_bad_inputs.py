"""Bad files end as ``failed`` with a reason visible through GET /documents/{id}, go to the
dead-letter queue, and never stop the rest of their batch."""

from __future__ import annotations

import json

import pytest

from docket.local.cloud import LocalCloud
from docket.models import document_id_for
from tests.builders import build_pdf, encrypt_pdf

from .conftest import Api

pytestmark = pytest.mark.integration

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000100ffff03000006000557bfabd40000000049454e44ae426082"
)

BAD_FILES = {
    "bad/corrupt.pdf": (
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage without xref",
        "corrupt_document",
    ),
    "bad/encrypted.pdf": (None, "encrypted_document"),
    "bad/empty.txt": (b"", "empty_document"),
    "bad/blank.md": (b"   \n\n\t  \n", "empty_document"),
    "bad/no-text.pdf": (None, "no_text_layer"),
    "bad/image.png": (PNG, None),
    "bad/archive.7z": (b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(range(256)) * 4, "unsupported_format"),
    "bad/garbage.txt": (bytes(range(256)) * 64, None),
    "bad/huge.txt": (b"word " * (600 * 1024), "file_too_large"),
}


def bad_file(name: str) -> bytes:
    data, _ = BAD_FILES[name]
    if name == "bad/encrypted.pdf":
        return encrypt_pdf(build_pdf(["Top secret merger plans."]), "s3cret")
    if name == "bad/no-text.pdf":
        return build_pdf([""])
    assert data is not None
    return data


def test_every_bad_file_fails_with_reason_and_dead_letter_while_good_ones_index(
    api: Api, cloud: LocalCloud
) -> None:
    from docket import aws

    s3 = aws.client("s3")
    # Given bad files and good files landing together (one extraction batch of up to 10)
    good = {
        f"good/{i}.txt": f"Good document number {i} about lighthouse keeping.".encode()
        for i in range(3)
    }
    names = list(BAD_FILES)
    uploads = [*names[:4], "good/0.txt", *names[4:], "good/1.txt", "good/2.txt"]
    for name in uploads:
        body = good[name] if name in good else bad_file(name)
        s3.put_object(Bucket="docket-documents", Key=f"tenants/badtenant/{name}", Body=body)
    cloud.wait_idle(120)
    # Then each bad file is failed with a typed, readable reason
    for name, (_, code) in BAD_FILES.items():
        doc = api.call(
            "GET", f"/documents/{document_id_for('badtenant', name)}", "badtenant"
        ).json()
        assert doc["status"] == "failed", (name, doc)
        assert doc["reason"] and len(doc["reason"]) > 10, (name, doc)
        if code:
            assert doc["reason_code"] == code, (name, doc)
    # And each is in the dead-letter queue with its reason
    dead = _drain_dlq(cloud)
    dead_keys = {m["record"]["key"]: m for m in dead}
    for name in BAD_FILES:
        assert f"tenants/badtenant/{name}" in dead_keys, name
        assert dead_keys[f"tenants/badtenant/{name}"]["reason"]
    # And the good files of the same batches are indexed
    for name in good:
        assert (
            api.wait_status(document_id_for("badtenant", name), "badtenant")["status"] == "indexed"
        )


def test_failure_mid_batch_reports_only_that_record(api: Api, cloud: LocalCloud) -> None:
    """One SQS batch with a record that fails transiently in the middle: the function reports it
    in batchItemFailures and processes the others."""
    from docket import aws

    s3 = aws.client("s3")
    keys = ["tenants/batch/a.txt", "tenants/batch/b.txt", "tenants/batch/c.txt"]
    for k in keys:
        s3.put_object(Bucket="docket-documents", Key=k, Body=f"Batch document {k}.".encode())
    cloud.wait_idle(60)

    def record(i: int, key: str, bucket: str = "docket-documents") -> dict:
        return {
            "messageId": f"m{i}",
            "receiptHandle": f"r{i}",
            "body": json.dumps(
                {
                    "Records": [
                        {
                            "eventVersion": "2.1",
                            "eventSource": "aws:s3",
                            "awsRegion": "us-east-1",
                            "eventTime": "2026-11-21T00:00:00.000Z",
                            "eventName": "ObjectCreated:Put",
                            "s3": {
                                "s3SchemaVersion": "1.0",
                                "configurationId": "x",
                                "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                                "object": {"key": key, "size": 10, "eTag": "0123456789abcdef"},
                            },
                        }
                    ]
                }
            ),
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1",
                "SenderId": "x",
                "ApproximateFirstReceiveTimestamp": "1",
            },
            "messageAttributes": {},
            "md5OfBody": "x",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:docket-ingest",
            "awsRegion": "us-east-1",
        }

    # The middle record's key is outside the tenants/<tenant>/ layout, so processing it raises
    event = {
        "Records": [record(0, keys[0]), record(1, "outside-the-layout.txt"), record(2, keys[2])]
    }
    result = cloud.invoke("docket-extract", event)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    for k in (keys[0], keys[2]):
        doc = api.call(
            "GET", f"/documents/{document_id_for('batch', k.split('/', 2)[2])}", "batch"
        ).json()
        assert doc["status"] == "indexed"


def _drain_dlq(cloud: LocalCloud) -> list[dict]:
    from docket import aws

    sqs = aws.client("sqs")
    url = cloud.queue_urls["docket-ingest-dlq"]
    out: list[dict] = []
    for _ in range(20):
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)
        msgs = resp.get("Messages", [])
        if not msgs:
            break
        out.extend(json.loads(m["Body"]) for m in msgs)
    return out
