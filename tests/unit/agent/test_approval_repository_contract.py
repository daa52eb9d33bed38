"""The ApprovalRepository contract (tests/approval_contract.py) against both adapters: the
in-memory one and the DynamoDB one (on moto, each call applied whole, as DynamoDB applies writes),
and the DynamoDB adapter's item layout, which data already stored depends on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from moto import mock_aws

from docket.agent.approval_store import UNDELIVERED, DynamoApprovalRepository
from docket.agent.memory import InMemoryApprovalRepository
from docket.agent.ports import ApprovalRepository
from tests.approval_contract import *  # noqa: F403  (the contract cases)
from tests.approval_contract import T0, approval, decision

from .test_outbox import TABLE, create_agent_table
from .test_task_repository_contract import _OneCallAtATime


@pytest.fixture(params=["memory", "dynamodb"])
def approvals(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ApprovalRepository]:
    if request.param == "memory":
        yield InMemoryApprovalRepository()
        return
    with mock_aws():
        from docket import aws

        create_agent_table(aws.client("dynamodb"))
        serial = _OneCallAtATime(aws.client("dynamodb"))
        monkeypatch.setattr(DynamoApprovalRepository, "_ddb", property(lambda self: serial))
        yield DynamoApprovalRepository(TABLE)


@pytest.fixture
def dynamo() -> Iterator[tuple[DynamoApprovalRepository, Any]]:
    with mock_aws():
        from docket import aws

        client = aws.client("dynamodb")
        create_agent_table(client)
        yield DynamoApprovalRepository(TABLE), client


def test_the_dynamodb_items_keep_their_layout(
    dynamo: tuple[DynamoApprovalRepository, Any],
) -> None:
    repo, client = dynamo
    record = approval()
    a = record.approval_id

    def item() -> dict[str, Any]:
        key = {"pk": {"S": f"APPROVAL#{a}"}, "sk": {"S": "APPROVAL"}}
        return client.get_item(TableName=TABLE, Key=key)["Item"]  # type: ignore[no-any-return]

    repo.create(record)
    repo.mark_notified(a, "slack")
    stored = item()
    assert stored["gsi1pk"] == {"S": "PENDING#acme"}
    assert stored["gsi1sk"] == stored["created_at"] == {"S": "2026-11-21T12:00:00Z"}
    assert stored["arguments"]["S"].startswith("{")  # JSON text: floats survive
    assert stored["notified"] == {"SS": ["slack"]}
    pointer = client.get_item(
        TableName=TABLE,
        Key={"pk": {"S": f"TASKAPPROVALS#{record.task_id}"}, "sk": {"S": f"APPROVAL#{a}"}},
    )["Item"]
    assert pointer["approval_id"] == {"S": a}
    # decided: in the sweeper's partition, at its decision time
    at = T0 + timedelta(hours=1)
    repo.update(a, expect="pending", set_=decision(at=at))
    stored = item()
    assert stored["gsi1pk"] == {"S": UNDELIVERED}
    assert stored["gsi1sk"] == stored["decided_at"] == {"S": at.isoformat()}
    assert "delivered_at" not in stored
    # delivered: out of the index
    repo.update(a, expect="approved", set_={"delivered_at": at})
    stored = item()
    assert "gsi1pk" not in stored and "gsi1sk" not in stored
    assert stored["delivered_at"] == {"S": at.isoformat()} and stored["status"] == {"S": "approved"}
