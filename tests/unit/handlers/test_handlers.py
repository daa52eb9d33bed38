"""Handlers parse real event shapes (events/) and report per-record failures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from docket.ingest.service import EmbedOutcome
from tests.utils import load_event

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"


def load_handler(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"test_fn_{name}", FUNCTIONS / name / "handler.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Context:
    function_name = "docket-test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:docket-test"
    aws_request_id = "req-1"


class RecordingService:
    def __init__(self, fail_keys: set[str] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_keys = fail_keys or set()

    def on_object_created(self, bucket: str, key: str) -> str:
        self.calls.append(("created", bucket, key))
        if key in self.fail_keys:
            raise RuntimeError("transient failure")
        return "extracted"

    def on_object_removed(self, key: str) -> None:
        self.calls.append(("removed", key))

    def on_document_change(self, event: str, old: Any, new: Any) -> str:
        self.calls.append(("document", event, old, new))
        return "chunked"

    def on_chunk_changes(self, changes: list[Any]) -> EmbedOutcome:
        self.calls.append(("chunks", changes))
        return EmbedOutcome(
            failures={
                c.record_id: RuntimeError("x")
                for c in changes
                if "fail" in (c.new.text if c.new else "")
            }
        )


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> RecordingService:
    svc = RecordingService()
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    return svc


def test_extract_handler_decodes_keys_and_dispatches(service: RecordingService) -> None:
    module = load_handler("extract")
    module.get_ingest_service = lambda: service
    # Given an S3 ObjectCreated notification delivered through SQS (key URL-encoded)
    result = module.handler(load_event("s3_object_created_via_sqs"), Context())
    # Then the key is decoded and nothing failed
    assert service.calls == [("created", "docket-documents", "tenants/acme/reports/q3 summary.txt")]
    assert result == {"batchItemFailures": []}


def test_extract_handler_ignores_s3_test_event(service: RecordingService) -> None:
    module = load_handler("extract")
    module.get_ingest_service = lambda: service
    assert module.handler(load_event("s3_test_event_via_sqs"), Context()) == {
        "batchItemFailures": []
    }
    assert service.calls == []


def test_extract_handler_reports_only_the_failed_record(service: RecordingService) -> None:
    module = load_handler("extract")
    service.fail_keys = {"tenants/acme/bad.txt"}
    module.get_ingest_service = lambda: service
    event = load_event("s3_object_created_via_sqs")
    good = event["Records"][0]
    bad = json.loads(json.dumps(good))
    bad["messageId"] = "bad-message"
    body = json.loads(bad["body"])
    body["Records"][0]["s3"]["object"]["key"] = "tenants/acme/bad.txt"
    bad["body"] = json.dumps(body)
    event["Records"] = [good, bad]
    result = module.handler(event, Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad-message"}]}


def test_extract_handler_routes_removals(service: RecordingService) -> None:
    module = load_handler("extract")
    module.get_ingest_service = lambda: service
    module.handler(load_event("s3_object_removed_via_sqs"), Context())
    assert service.calls == [("removed", "tenants/acme/reports/q3 summary.txt")]


@pytest.mark.parametrize(
    "name,event_name",
    [
        ("ddb_documents_insert", "INSERT"),
        ("ddb_documents_modify", "MODIFY"),
        ("ddb_documents_remove", "REMOVE"),
    ],
)
def test_chunk_handler_parses_document_images(
    service: RecordingService, name: str, event_name: str
) -> None:
    module = load_handler("chunk")
    module.get_ingest_service = lambda: service
    assert module.handler(load_event(name), Context()) == {"batchItemFailures": []}
    ((_, ev, old, new),) = service.calls
    assert ev == event_name
    if new is not None:
        assert new.document_id == "doc_0123456789abcdef01234567" and new.acl_groups == ["staff"]
    if event_name == "REMOVE":
        assert new is None and old.status == "indexed"


def test_embed_handler_reports_failed_sequence_numbers(service: RecordingService) -> None:
    module = load_handler("embed")
    module.get_ingest_service = lambda: service
    event = load_event("ddb_chunks_insert")
    bad = json.loads(json.dumps(event["Records"][0]))
    bad["dynamodb"]["SequenceNumber"] = "100000000000000000002"
    bad["dynamodb"]["NewImage"]["text"] = {"S": "this one will fail"}
    bad["dynamodb"]["NewImage"]["chunk_id"] = {"S": "chk_ffff"}
    event["Records"].append(bad)
    result = module.handler(event, Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "100000000000000000002"}]}
    ((_, changes),) = service.calls
    assert [c.event_name for c in changes] == ["INSERT", "INSERT"]
    assert changes[0].new.text == "Revenue grew 12% in the third quarter."
