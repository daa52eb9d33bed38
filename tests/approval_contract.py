"""The ApprovalRepository contract (docket/agent/ports.py): every adapter passes this one suite, as
every TaskRepository passes tests/agent_contract.py. A suite that runs it imports the cases
(``from tests.approval_contract import *``) and provides the fixture ``approvals``; the cases speak
only the port."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from docket.agent.models import ApprovalRecord
from docket.agent.ports import ApprovalRepository

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TASK = "task_" + "a" * 24
OTHER_TASK = "task_" + "b" * 24


def approval(
    n: int = 1,
    *,
    task_id: str = TASK,
    tenant: str = "acme",
    created: datetime = T0,
    token: str = "token-1",
) -> ApprovalRecord:
    return ApprovalRecord(
        approval_id=f"apv_{n:024d}",
        task_id=task_id,
        tenant=tenant,
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:docket-agent:{task_id}",
        step=2,
        call_id=f"call_{n}",
        tool="send_email",
        arguments={"to": ["carol@example.com"], "ratio": 0.25, "nested": {"n": [1, 2.5]}},
        summary=[("To", "carol@example.com"), ("Subject", "Q3")],
        requester="dana@acme",
        task_token=token,
        created_at=created,
        expires_at=created + timedelta(days=3),
    )


def decision(status: str = "approved", by: str = "alice", at: datetime = T0) -> dict[str, object]:
    """What ApprovalService.decide writes: the decision, not yet delivered."""
    return {
        "status": status,
        "decided_by": by,
        "decided_at": at,
        "decision_channel": "api",
        "comment": "ok",
        "delivered_at": None,
    }


def ids(records: list[ApprovalRecord]) -> list[str]:
    return [r.approval_id for r in records]


# --- create and read -----------------------------------------------------------------------------


def test_an_approval_is_created_once_and_read_back_whole(approvals: ApprovalRepository) -> None:
    assert approvals.create(approval())
    # a second create of the same id writes nothing, whatever it carries
    assert not approvals.create(approval(token="another-token", created=T0 + timedelta(hours=1)))
    got = approvals.get(approval().approval_id)
    assert got == approval()  # every field, floats, nested values and the task token included
    assert (
        got is not None and got.arguments["ratio"] == 0.25 and got.summary[1] == ("Subject", "Q3")
    )
    assert approvals.get("apv_" + "f" * 24) is None


def test_the_channels_told_are_a_set_per_approval(approvals: ApprovalRepository) -> None:
    approvals.create(approval(1))
    approvals.create(approval(2))
    assert approvals.notified(approval(1).approval_id) == set()
    for channel in ("slack", "email:alice@acme.example", "slack"):
        approvals.mark_notified(approval(1).approval_id, channel)
    assert approvals.notified(approval(1).approval_id) == {"slack", "email:alice@acme.example"}
    assert approvals.notified(approval(2).approval_id) == set()
    assert approvals.notified("apv_" + "f" * 24) == set()
    # telling a channel leaves the record as it was
    assert approvals.get(approval(1).approval_id) == approval(1)


# --- conditional updates -------------------------------------------------------------------------


def test_an_update_holds_only_when_the_status_is_the_expected_one(
    approvals: ApprovalRepository,
) -> None:
    approvals.create(approval())
    a = approval().approval_id
    # expecting another status: nothing is written
    assert approvals.update(a, expect="approved", set_={"status": "denied"}) is None
    assert approvals.get(a) == approval()
    # an update that changes nothing still answers whether the status held
    assert approvals.update(a, expect="pending", set_={}) == approval()
    assert approvals.update(a, expect="denied", set_={}) is None
    # expecting the status it has: the update is written and the new record returned
    decided = approvals.update(a, expect="pending", set_=decision(at=T0 + timedelta(hours=1)))
    assert decided is not None and decided.status == "approved" and decided.decided_by == "alice"
    assert decided.decided_at == T0 + timedelta(hours=1) and decided.decision_channel == "api"
    assert decided.task_token == "token-1" and decided.arguments == approval().arguments
    assert approvals.get(a) == decided
    # a second decision expecting pending is refused: a decision is single-use
    assert approvals.update(a, expect="pending", set_=decision("denied", by="bob")) is None
    assert approvals.get(a) == decided
    assert approvals.update("apv_" + "f" * 24, expect="pending", set_=decision()) is None


def test_of_racing_decisions_exactly_one_is_written(approvals: ApprovalRepository) -> None:
    approvals.create(approval())
    a = approval().approval_id
    start = threading.Barrier(12)
    won: list[ApprovalRecord] = []
    lock = threading.Lock()

    def decide(n: int) -> None:
        start.wait()
        done = approvals.update(a, expect="pending", set_=decision(by=f"approver-{n}"))
        if done is not None:
            with lock:
                won.append(done)

    threads = [threading.Thread(target=decide, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert approvals.get(a) == won[0]


def test_an_update_clears_fields_to_their_defaults(approvals: ApprovalRepository) -> None:
    approvals.create(approval())
    a = approval().approval_id
    approvals.update(a, expect="pending", set_=decision())
    # a decision taken back (it could not be delivered): pending again, its fields cleared
    reopened = approvals.update(
        a,
        expect="approved",
        set_={"status": "pending", "comment": None},
        remove=("decided_by", "decided_at", "decision_channel"),
    )
    assert reopened == approval()
    assert approvals.get(a) == approval()
    # a new token for a pending approval changes the token alone
    renewed = approvals.update(a, expect="pending", set_={"task_token": "token-2"})
    assert renewed == approval(token="token-2") and approvals.get(a) == renewed


@pytest.mark.parametrize(
    ("set_", "remove"),
    [
        pytest.param({"tenant": "globex"}, (), id="tenant"),
        pytest.param({"created_at": T0 + timedelta(days=1)}, (), id="created_at"),
        pytest.param({}, ("task_id",), id="task_id"),
        pytest.param({"approval_id": "apv_" + "9" * 24}, (), id="approval_id"),
        pytest.param({"gsi1pk": "PENDING#globex"}, (), id="not-a-field"),
        pytest.param({"status": None}, (), id="status-cleared"),
        pytest.param({}, ("task_token",), id="required-cleared"),
    ],
)
def test_an_update_cannot_change_identity_or_what_is_no_field(
    approvals: ApprovalRepository, set_: dict[str, object], remove: tuple[str, ...]
) -> None:
    approvals.create(approval())
    with pytest.raises(ValueError):
        approvals.update(approval().approval_id, expect="pending", set_=set_, remove=remove)
    assert approvals.get(approval().approval_id) == approval()
    assert ids(approvals.list_pending("acme")) == [approval().approval_id]


# --- the lists -----------------------------------------------------------------------------------


def test_the_pending_list_is_the_tenant_s_oldest_first(approvals: ApprovalRepository) -> None:
    late, early = approval(1, created=T0 + timedelta(minutes=5)), approval(2, created=T0)
    other = approval(3, task_id=OTHER_TASK, tenant="globex", created=T0 + timedelta(minutes=1))
    for record in (late, early, other):
        approvals.create(record)
    assert approvals.list_pending("acme") == [early, late]
    assert approvals.list_pending("globex") == [other]
    assert approvals.list_pending("initech") == []
    # a new token keeps it listed, with the token
    approvals.update(late.approval_id, expect="pending", set_={"task_token": "token-2"})
    assert [r.task_token for r in approvals.list_pending("acme")] == ["token-1", "token-2"]


def test_a_decided_or_closed_approval_leaves_the_pending_list(
    approvals: ApprovalRepository,
) -> None:
    a, b, c = (approval(n, created=T0 + timedelta(minutes=n)) for n in (1, 2, 3))
    for record in (a, b, c):
        approvals.create(record)
    approvals.update(a.approval_id, expect="pending", set_=decision())
    assert ids(approvals.list_pending("acme")) == [b.approval_id, c.approval_id]
    approvals.update(
        b.approval_id, expect="pending", set_={"status": "cancelled", "decided_at": T0}
    )
    approvals.update(c.approval_id, expect="pending", set_={"status": "expired", "decided_at": T0})
    assert approvals.list_pending("acme") == []
    # taken back, a decision is listed again, in its place
    approvals.update(
        a.approval_id,
        expect="approved",
        set_={"status": "pending"},
        remove=("decided_by", "decided_at", "decision_channel", "comment"),
    )
    assert ids(approvals.list_pending("acme")) == [a.approval_id]


def test_a_task_s_approvals_are_listed_oldest_first_whatever_their_status(
    approvals: ApprovalRepository,
) -> None:
    late, early = approval(1, created=T0 + timedelta(minutes=5)), approval(2, created=T0)
    elsewhere = approval(3, task_id=OTHER_TASK)
    for record in (late, early, elsewhere):
        approvals.create(record)
    approvals.update(early.approval_id, expect="pending", set_=decision("denied"))
    got = approvals.for_task(TASK)
    assert ids(got) == [early.approval_id, late.approval_id]
    assert [r.status for r in got] == ["denied", "pending"]
    assert approvals.for_task(OTHER_TASK) == [elsewhere]
    assert approvals.for_task("task_" + "f" * 24) == []


def test_undelivered_decisions_are_found_until_delivered(approvals: ApprovalRepository) -> None:
    a = approval(1)
    b = approval(2, task_id=OTHER_TASK, tenant="globex")
    c, d = approval(3), approval(4)
    for record in (a, b, c, d):
        approvals.create(record)
    assert approvals.undelivered(T0 + timedelta(days=9)) == []  # pending ones are not decisions
    # b is decided first; a later, by an update that does not name delivered_at
    approvals.update(b.approval_id, expect="pending", set_=decision("denied", at=T0))
    approvals.update(
        a.approval_id,
        expect="pending",
        set_={"status": "approved", "decided_by": "bob", "decided_at": T0 + timedelta(hours=1)},
    )
    approvals.update(
        c.approval_id, expect="pending", set_={"status": "cancelled", "decided_at": T0}
    )
    # every tenant's, oldest decision first, decided at or before the time asked
    assert ids(approvals.undelivered(T0 + timedelta(hours=2))) == [b.approval_id, a.approval_id]
    assert ids(approvals.undelivered(T0 + timedelta(hours=1))) == [b.approval_id, a.approval_id]
    assert ids(approvals.undelivered(T0 + timedelta(minutes=59))) == [b.approval_id]
    assert approvals.undelivered(T0 - timedelta(seconds=1)) == []
    # delivered: no longer found, and the record says when
    at = T0 + timedelta(hours=3)
    delivered = approvals.update(a.approval_id, expect="approved", set_={"delivered_at": at})
    assert delivered is not None and delivered.delivered_at == at
    assert ids(approvals.undelivered(T0 + timedelta(days=1))) == [b.approval_id]
    # a decision that can no longer reach its task is closed: not found either
    approvals.update(b.approval_id, expect="denied", set_={"status": "expired", "decided_at": at})
    assert approvals.undelivered(T0 + timedelta(days=1)) == []
    assert approvals.list_pending("acme") == [d] and approvals.list_pending("globex") == []
