"""The local cloud's saved state: a snapshot restores exactly (items, objects, metadata), an
unchanged object is not written again, and a data directory saved in the earlier format (object
bodies inline) still restores."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from types import SimpleNamespace

import boto3
from moto import mock_aws

from docket.local import state

WIRING = SimpleNamespace(tables=[SimpleNamespace(name="things")], buckets=["docket-things"])


def _setup() -> tuple[object, object]:
    os.environ.setdefault("AWS_REGION", "us-east-1")
    s3, ddb = (
        boto3.client("s3", region_name="us-east-1"),
        boto3.client("dynamodb", region_name="us-east-1"),
    )
    s3.create_bucket(Bucket="docket-things")
    ddb.create_table(
        TableName="things",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return s3, ddb


def test_a_snapshot_restores_exactly_and_rewrites_only_what_changed(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    saved = tmp_path / "state"
    with mock_aws():
        s3, ddb = _setup()
        ddb.put_item(TableName="things", Item={"pk": {"S": "a"}, "n": {"N": "9.99"}})
        s3.put_object(
            Bucket="docket-things", Key="t/a.txt", Body=b"alpha", Metadata={"acl-groups": "x"}
        )
        s3.put_object(Bucket="docket-things", Key="t/b.txt", Body=b"beta", ContentType="text/plain")
        state.snapshot(saved, s3, ddb, WIRING)
        blobs = sorted(p.name for p in (tmp_path / "state-objects").iterdir())
        assert len(blobs) == 2
        first = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "state-objects").iterdir()}
        s3.put_object(Bucket="docket-things", Key="t/b.txt", Body=b"beta two")
        s3.delete_object(Bucket="docket-things", Key="t/a.txt")
        state.snapshot(saved, s3, ddb, WIRING)
        after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "state-objects").iterdir()}
        assert len(after) == 1 and not set(after) & set(first)  # old bodies collected
    with mock_aws():
        s3, ddb = _setup()
        assert state.restore(saved, s3, ddb, WIRING) == 2
        assert ddb.get_item(TableName="things", Key={"pk": {"S": "a"}})["Item"]["n"] == {
            "N": "9.99"
        }
        got = s3.get_object(Bucket="docket-things", Key="t/b.txt")
        assert got["Body"].read() == b"beta two"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="docket-things")["Contents"]]
        assert keys == ["t/b.txt"]


def test_a_state_saved_in_the_earlier_format_restores(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    saved = tmp_path / "state"
    (saved / "tables").mkdir(parents=True)
    (saved / "buckets").mkdir()
    (saved / "tables" / "things.jsonl").write_text(json.dumps({"pk": {"S": "a"}}) + "\n")
    line = {
        "key": "t/a.txt",
        "metadata": {"acl-groups": "x"},
        "content_type": "text/plain",
        "body": base64.b64encode(b"alpha").decode(),
    }
    (saved / "buckets" / "docket-things.jsonl").write_text(json.dumps(line) + "\n")
    with mock_aws():
        s3, ddb = _setup()
        assert state.restore(saved, s3, ddb, WIRING) == 2
        got = s3.get_object(Bucket="docket-things", Key="t/a.txt")
        assert got["Body"].read() == b"alpha" and got["Metadata"] == {"acl-groups": "x"}
