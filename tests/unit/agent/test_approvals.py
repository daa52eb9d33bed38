"""ApprovalService with fake Step Functions and fake notifiers, on each ApprovalRepository: moto's
DynamoDB (the deployed adapter) and the in-memory one (the ``h`` fixture runs each case on both)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from docket import aws
from docket.agent.approvals import ApprovalService, approval_id_for
from docket.agent.memory import InMemoryApprovalRepository
from docket.agent.models import ApprovalRecord
from docket.agent.notify import EmailMessage
from docket.agent.ports import ApprovalRepository
from docket.agent.workflow import DENIED_ERROR
from docket.config import Settings
from docket.errors import (
    ApprovalClosed,
    Forbidden,
    InvalidSignature,
    StoreUnavailable,
    ToolUnavailable,
)

TABLE = "docket-agent-test"
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAXSECRET-TASK-TOKEN-7f3a9c"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def create_agent_table(name: str = TABLE) -> None:
    aws.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass
class FakeStepFunctions:
    """Records SendTaskSuccess/Failure; ``execution_status`` and ``send_error`` steer it."""

    execution_status: str = "RUNNING"
    send_error: Exception | None = None
    succeeded: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    on_status: Any = None

    def status(self, execution_arn: str) -> str:
        if self.on_status is not None:
            hook, self.on_status = self.on_status, None
            hook()
        return self.execution_status

    def succeed(self, task_token: str, output: dict[str, Any]) -> None:
        if self.send_error:
            raise self.send_error
        self.succeeded.append((task_token, output))

    def fail(self, task_token: str, *, error: str, cause: str) -> None:
        if self.send_error:
            raise self.send_error
        self.failed.append((task_token, error, cause))


@dataclass
class FakeEmailer:
    sent: list[EmailMessage] = field(default_factory=list)
    fail_for: set[str] = field(default_factory=set)

    def send(self, message: EmailMessage) -> str:
        if set(message.to) & self.fail_for:
            raise ToolUnavailable("SES is down")
        self.sent.append(message)
        return f"msg-{len(self.sent)}"


@dataclass
class FakeSlack:
    posts: list[tuple[str, str, list[dict[str, Any]] | None]] = field(default_factory=list)
    down: bool = False

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        if self.down:
            raise ToolUnavailable("Slack is down")
        self.posts.append((channel, text, blocks))
        return f"{len(self.posts)}.000"


@dataclass
class Harness:
    service: ApprovalService
    sfn: FakeStepFunctions
    emailer: FakeEmailer
    slack: FakeSlack
    clock: list[datetime]


def approval_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "agent_table": TABLE,
        "approval_emails": "alice@acme.example,bob@acme.example",
        "approval_slack_channel": "#approvals",
        "approval_base_url": "https://approvals.example.com",
        "approval_link_secret": "unit-test-link-secret",
    }
    return Settings(**{**values, **overrides})


def make_harness(settings: Settings, repository: ApprovalRepository | None = None) -> Harness:
    sfn, emailer, slack, clock = FakeStepFunctions(), FakeEmailer(), FakeSlack(), [T0]
    service = ApprovalService(
        settings,
        repository=repository,
        stepfunctions=sfn,  # type: ignore[arg-type]
        emailer_factory=lambda: emailer,
        slack_factory=lambda: slack,
        clock=lambda: clock[0],
    )
    return Harness(service, sfn, emailer, slack, clock)


@pytest.fixture
def moto_table() -> Iterator[None]:
    with mock_aws():
        aws.reset_clients()
        create_agent_table()
        yield
    aws.reset_clients()


@pytest.fixture(params=["dynamodb", "memory"])
def h(request: pytest.FixtureRequest) -> Harness:
    if request.param == "memory":
        return make_harness(approval_settings(), InMemoryApprovalRepository())
    request.getfixturevalue("moto_table")
    return make_harness(approval_settings())


def pending(
    task_id: str = "task_" + "a" * 24,
    *,
    step: int = 2,
    call_id: str = "call_1",
    tenant: str = "acme",
    token: str = TOKEN,
    created: datetime = T0,
    body: str = "Hello <b>team</b>",
) -> ApprovalRecord:
    return ApprovalRecord(
        task_id=task_id,
        tenant=tenant,
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:docket-agent:{task_id}",
        step=step,
        call_id=call_id,
        tool="send_email",
        arguments={"to": ["carol@example.com"], "subject": "Q3", "body": body, "ratio": 0.25},
        summary=[("To", "carol@example.com"), ("Subject", "Q3"), ("Body", body)],
        requester="dana@acme",
        task_token=token,
        created_at=created,
        expires_at=created + timedelta(days=3),
    )


# --- request -------------------------------------------------------------------------------------


def test_request_stores_pending_and_notifies_slack_and_each_approver(h: Harness) -> None:
    # Given a new approval
    # When it is requested
    stored = h.service.request(pending())
    # Then its id comes from (task, step, call), it is pending, listed and findable by task
    assert stored.approval_id == approval_id_for("task_" + "a" * 24, 2, "call_1")
    assert stored.approval_id.startswith("apv_") and len(stored.approval_id) == 28
    again = h.service.get(stored.approval_id)
    assert again is not None and again.status == "pending"
    assert again.arguments["ratio"] == 0.25 and again.summary[2] == ("Body", "Hello <b>team</b>")
    assert [a.approval_id for a in h.service.list_pending("acme")] == [stored.approval_id]
    assert h.service.list_pending("globex") == []
    assert [a.approval_id for a in h.service.for_task("task_" + "a" * 24)] == [stored.approval_id]
    # and Slack got Approve/Deny buttons carrying the id
    [(channel, text, blocks)] = h.slack.posts
    assert channel == "#approvals" and "send_email" in text
    assert blocks is not None and blocks[0]["type"] == "header"
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [(b["action_id"], b["style"], b["value"]) for b in buttons] == [
        ("approve", "primary", stored.approval_id),
        ("deny", "danger", stored.approval_id),
    ]
    fields = [f["text"] for b in blocks if b["type"] == "section" for f in b.get("fields", [])]
    assert "*Body*\nHello &lt;b&gt;team&lt;/b&gt;" in fields  # Slack markup escaped
    # and each approver got an e-mail with a link signed for them alone
    assert sorted(m.to for m in h.emailer.sent) == [("alice@acme.example",), ("bob@acme.example",)]
    for message in h.emailer.sent:
        link = next(w for w in message.text.split() if w.startswith("https://"))
        assert link.startswith(f"https://approvals.example.com/approvals/{stored.approval_id}?sig=")
        sig = link.split("sig=", 1)[1]
        assert h.service.verify_link(stored.approval_id, sig) == message.to[0]
        assert message.html is not None and "Hello &lt;b&gt;team&lt;/b&gt;" in message.html


def test_request_twice_creates_one_record_and_notifies_once(h: Harness) -> None:
    # Given a request that was already made (a Lambda retry repeats it)
    first = h.service.request(pending())
    # When it is made again
    second = h.service.request(pending())
    # Then there is one approval and each channel was told once
    assert second.approval_id == first.approval_id
    assert len(h.service.list_pending("acme")) == 1 and len(h.service.for_task(first.task_id)) == 1
    assert len(h.slack.posts) == 1 and len(h.emailer.sent) == 2


def test_a_retried_state_refreshes_the_stored_token(h: Harness) -> None:
    # Given a pending approval; the waiting state is retried and gets a new token
    first = h.service.request(pending(token="token-attempt-1"))
    h.service.request(pending(token="token-attempt-2"))
    # When it is approved
    h.service.decide(first.approval_id, approve=True, decided_by="alice", channel="api")
    # Then the decision goes to the live wait, and nobody was notified twice
    assert [t for t, _ in h.sfn.succeeded] == ["token-attempt-2"]
    assert len(h.slack.posts) == 1


def test_one_working_channel_is_enough_and_a_retry_tells_only_the_others(h: Harness) -> None:
    # Given Slack is down but e-mail works
    h.slack.down = True
    # When the approval is requested, then it succeeds (the approvers got e-mail)
    h.service.request(pending())
    assert len(h.emailer.sent) == 2 and h.slack.posts == []
    # When Slack is back and the request is repeated, then only Slack is told
    h.slack.down = False
    h.service.request(pending())
    assert len(h.slack.posts) == 1 and len(h.emailer.sent) == 2


def test_no_channel_reached_raises_so_the_request_is_retried(h: Harness) -> None:
    h.slack.down = True
    h.emailer.fail_for = {"alice@acme.example", "bob@acme.example"}
    with pytest.raises(ToolUnavailable, match="no approver could be notified"):
        h.service.request(pending())
    # the record is stored; a retry once things work notifies everyone, once
    h.slack.down, h.emailer.fail_for = False, set()
    h.service.request(pending())
    assert len(h.slack.posts) == 1 and len(h.emailer.sent) == 2


def test_the_task_token_never_leaves_the_store(h: Harness) -> None:
    stored = h.service.request(pending())
    exposed = [
        *(m.text + (m.html or "") + m.subject for m in h.emailer.sent),
        *(json.dumps(p) for p in h.slack.posts),
        h.service.link(stored.approval_id, "alice@acme.example", stored.expires_at),
        json.dumps(stored.public()),
        json.dumps([a.public() for a in h.service.list_pending("acme")]),
        repr(stored),
    ]
    assert exposed and all(TOKEN not in text for text in exposed)
    assert "TASK-TOKEN" not in "".join(exposed)


def test_pending_approvals_are_listed_oldest_first(h: Harness) -> None:
    late = h.service.request(pending(call_id="c2", created=T0 + timedelta(minutes=5)))
    early = h.service.request(pending(call_id="c1", created=T0))
    assert [a.approval_id for a in h.service.list_pending("acme")] == [
        early.approval_id,
        late.approval_id,
    ]


# --- decisions -----------------------------------------------------------------------------------


def test_approve_sends_task_success_once(h: Harness) -> None:
    stored = h.service.request(pending())
    h.clock[0] = T0 + timedelta(hours=1)
    decided = h.service.decide(
        stored.approval_id, approve=True, decided_by="alice@acme.example", channel="email",
        comment="ok, ship it",
    )  # fmt: skip
    assert decided.status == "approved" and decided.decided_by == "alice@acme.example"
    assert decided.decision_channel == "email" and decided.comment == "ok, ship it"
    assert decided.decided_at == T0 + timedelta(hours=1)
    assert h.sfn.succeeded == [
        (
            TOKEN,
            {
                "approved": True,
                "approval_id": stored.approval_id,
                "decided_by": "alice@acme.example",
                "comment": "ok, ship it",
            },
        )
    ]
    assert h.sfn.failed == []
    assert h.service.list_pending("acme") == []  # the index holds pending ones only


def test_deny_sends_task_failure_with_the_denied_error(h: Harness) -> None:
    stored = h.service.request(pending())
    decided = h.service.decide(
        stored.approval_id, approve=False, decided_by="bob", channel="slack", comment="no"
    )
    assert decided.status == "denied"
    [(token, error, cause)] = h.sfn.failed
    assert token == TOKEN and error == DENIED_ERROR
    assert json.loads(cause) == {
        "approval_id": stored.approval_id,
        "decided_by": "bob",
        "comment": "no",
    }
    assert h.sfn.succeeded == []


def test_a_second_decision_is_refused(h: Harness) -> None:
    stored = h.service.request(pending())
    h.service.decide(stored.approval_id, approve=True, decided_by="alice", channel="api")
    with pytest.raises(ApprovalClosed, match="already approved by alice"):
        h.service.decide(stored.approval_id, approve=False, decided_by="bob", channel="api")
    assert len(h.sfn.succeeded) == 1 and h.sfn.failed == []
    record = h.service.get(stored.approval_id)
    assert record is not None and record.status == "approved" and record.decided_by == "alice"


def test_a_decision_racing_another_is_refused_by_the_conditional_update(h: Harness) -> None:
    # Given bob's decision lands while alice's is between its checks and its update
    stored = h.service.request(pending())

    def bob_decides() -> None:
        h.service.decide(stored.approval_id, approve=False, decided_by="bob", channel="slack")

    h.sfn.on_status = bob_decides
    # When alice's decision goes on, then it is refused and only bob's reached the task
    with pytest.raises(ApprovalClosed, match="already denied by bob"):
        h.service.decide(stored.approval_id, approve=True, decided_by="alice", channel="email")
    assert h.sfn.succeeded == [] and len(h.sfn.failed) == 1


def test_an_expired_approval_is_closed_and_marked_expired(h: Harness) -> None:
    stored = h.service.request(pending())
    h.clock[0] = stored.expires_at + timedelta(seconds=1)
    with pytest.raises(ApprovalClosed, match="expired"):
        h.service.decide(stored.approval_id, approve=True, decided_by="alice", channel="api")
    record = h.service.get(stored.approval_id)
    assert record is not None and record.status == "expired"
    assert h.sfn.succeeded == [] and h.service.list_pending("acme") == []


def test_an_ended_task_closes_its_approval(h: Harness) -> None:
    stored = h.service.request(pending())
    h.sfn.execution_status = "ABORTED"
    with pytest.raises(ApprovalClosed, match="already ended"):
        h.service.decide(stored.approval_id, approve=True, decided_by="alice", channel="api")
    record = h.service.get(stored.approval_id)
    assert record is not None and record.status == "expired"
    assert h.sfn.succeeded == []


def test_a_token_that_is_gone_marks_the_approval_expired(h: Harness) -> None:
    stored = h.service.request(pending())
    h.sfn.send_error = ApprovalClosed("the task is no longer waiting for this approval")
    with pytest.raises(ApprovalClosed, match="already ended"):
        h.service.decide(stored.approval_id, approve=True, decided_by="alice", channel="api")
    record = h.service.get(stored.approval_id)
    assert record is not None and record.status == "expired"


def test_a_decision_that_could_not_be_delivered_can_be_made_again(h: Harness) -> None:
    # Given Step Functions fails transiently while the decision is delivered
    stored = h.service.request(pending())
    h.sfn.send_error = StoreUnavailable("throttled")
    with pytest.raises(StoreUnavailable):
        h.service.decide(stored.approval_id, approve=True, decided_by="alice", channel="api")
    # Then the approval is pending again (and listed), and a new attempt goes through
    assert [a.approval_id for a in h.service.list_pending("acme")] == [stored.approval_id]
    h.sfn.send_error = None
    h.service.decide(stored.approval_id, approve=True, decided_by="alice", channel="api")
    assert len(h.sfn.succeeded) == 1


def test_cancel_for_task_closes_only_pending_ones(h: Harness) -> None:
    task = "task_" + "b" * 24
    decided = h.service.request(pending(task, call_id="c1"))
    h.service.decide(decided.approval_id, approve=True, decided_by="alice", channel="api")
    open_one = h.service.request(pending(task, call_id="c2"))
    other_task = h.service.request(pending("task_" + "c" * 24, call_id="c1"))
    closed = h.service.cancel_for_task(task)
    assert [c.approval_id for c in closed] == [open_one.approval_id]
    statuses = {a.approval_id: a.status for a in h.service.for_task(task)}
    assert statuses == {decided.approval_id: "approved", open_one.approval_id: "cancelled"}
    with pytest.raises(ApprovalClosed, match="cancelled"):
        h.service.decide(open_one.approval_id, approve=True, decided_by="alice", channel="api")
    assert [a.approval_id for a in h.service.list_pending("acme")] == [other_task.approval_id]


# --- signed links --------------------------------------------------------------------------------


def _sig(link: str) -> str:
    return link.split("sig=", 1)[1]


def test_a_link_names_its_approver() -> None:
    service = make_harness(approval_settings()).service
    link = service.link("apv_" + "0" * 24, "alice@acme.example", T0 + timedelta(days=1))
    assert service.verify_link("apv_" + "0" * 24, _sig(link)) == "alice@acme.example"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"), id="mac"),
        pytest.param(lambda s: "Ym9iQGFjbWUuZXhhbXBsZQ" + s[s.index(".") :], id="other-approver"),
        pytest.param(
            lambda s: s.split(".")[0] + f".{int(s.split('.')[1]) + 86400}." + s.split(".")[2],
            id="later-expiry",
        ),
        pytest.param(lambda s: "", id="empty"),
        pytest.param(lambda s: "not.a.sig", id="garbage"),
        pytest.param(lambda s: s + ".x", id="extra-part"),
        pytest.param(lambda s: "%%%." + s.split(".", 1)[1], id="bad-base64"),
    ],
)
def test_a_tampered_link_is_refused(mutate: Any) -> None:
    service = make_harness(approval_settings()).service
    sig = _sig(service.link("apv_" + "0" * 24, "alice@acme.example", T0 + timedelta(days=1)))
    with pytest.raises(InvalidSignature):
        service.verify_link("apv_" + "0" * 24, mutate(sig))


def test_a_link_is_bound_to_its_approval_secret_and_expiry() -> None:
    h = make_harness(approval_settings())
    sig = _sig(h.service.link("apv_" + "0" * 24, "alice@acme.example", T0 + timedelta(days=1)))
    with pytest.raises(InvalidSignature):
        h.service.verify_link("apv_" + "1" * 24, sig)  # another approval
    forger = make_harness(approval_settings(approval_link_secret="guessed")).service
    with pytest.raises(InvalidSignature):
        forger.verify_link("apv_" + "0" * 24, sig)  # another secret
    h.clock[0] = T0 + timedelta(days=1, seconds=1)
    with pytest.raises(InvalidSignature, match="expired"):
        h.service.verify_link("apv_" + "0" * 24, sig)


# --- fixes from review ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sig",
    [
        "YWxpY2U.%C2%B2.AAAA",  # a superscript two: str.isdigit() says yes, int() says no
        "YWxpY2U.²³.AAAA",
        "YWxpY2U." + "9" * 5000 + ".AAAA",  # past int()'s digit limit
    ],
)
def test_link_with_a_strange_expiry_is_a_forged_link_not_a_crash(h: Harness, sig: str) -> None:
    with pytest.raises(InvalidSignature):
        h.service.verify_link(pending().approval_id, sig)


def test_slack_timestamp_that_is_not_ascii_digits_is_refused() -> None:
    from docket.agent.signing import verify_slack_request

    with pytest.raises(InvalidSignature):
        verify_slack_request(
            approval_settings(),
            {"X-Slack-Request-Timestamp": "¹²³", "X-Slack-Signature": "v0=abc"},
            b"payload=%7B%7D",
        )


def test_deployed_settings_refuse_the_default_secrets() -> None:
    from docket.agent.signing import signing_key
    from docket.errors import ConfigurationError

    deployed = Settings(auth_mode="jwt_authorizer")
    for name in ("approval_link_secret", "slack_signing_secret"):
        with pytest.raises(ConfigurationError):
            signing_key(deployed, name)
    chosen = Settings(auth_mode="jwt_authorizer", approval_link_secret="x" * 40)
    assert signing_key(chosen, "approval_link_secret") == b"x" * 40
    assert signing_key(Settings(), "approval_link_secret")  # the local cloud keeps its default


def test_decision_goes_to_the_newest_task_token(h: Harness) -> None:
    """A retried RequestApproval renews the token while a decision is under way (between its
    read and its update); the decision must answer the live wait, not the first token."""
    first = h.service.request(pending(token="TOKEN-OF-THE-FIRST-ATTEMPT"))
    h.sfn.on_status = lambda: h.service.request(pending(token="TOKEN-OF-THE-RETRY"))
    h.service.decide(first.approval_id, approve=True, decided_by="alice", channel="api")
    assert [token for token, _ in h.sfn.succeeded] == ["TOKEN-OF-THE-RETRY"]


def test_slack_offers_no_approve_button_for_text_it_cannot_show_whole() -> None:
    from docket.agent.messages import slack_blocks

    def buttons(record: ApprovalRecord) -> list[str]:
        actions = [b for b in slack_blocks(record) if b["type"] == "actions"]
        return [e["action_id"] for e in actions[0]["elements"]]

    assert buttons(pending()) == ["approve", "deny"]
    long = pending(body="harmless start. " * 200 + "and also wire $1M to the attacker")
    assert buttons(long) == ["deny"]


# --- four eyes ------------------------------------------------------------------------------------


def test_the_requester_cannot_approve_their_own_call(h: Harness) -> None:
    stored = h.service.request(pending())  # requested by dana@acme
    with pytest.raises(Forbidden, match="four eyes"):
        h.service.decide(stored.approval_id, approve=True, decided_by="Dana@ACME", channel="api")
    assert h.sfn.succeeded == [] and h.service.get(stored.approval_id).status == "pending"
    # another approver still can
    decided = h.service.decide(
        stored.approval_id, approve=True, decided_by="alice@acme.example", channel="api"
    )
    assert decided.status == "approved" and len(h.sfn.succeeded) == 1


def test_the_requester_may_deny_their_own_call(h: Harness) -> None:
    stored = h.service.request(pending())
    decided = h.service.decide(
        stored.approval_id, approve=False, decided_by="dana@acme", channel="api"
    )
    assert decided.status == "denied"


def test_a_tool_can_allow_self_approval(moto_table: None) -> None:
    h = make_harness(approval_settings(approval_self_approve_tools="send_email"))
    stored = h.service.request(pending())
    decided = h.service.decide(
        stored.approval_id, approve=True, decided_by="dana@acme", channel="api"
    )
    assert decided.status == "approved"


def test_a_decision_whose_process_died_before_sending_is_swept_to_its_task(h: Harness) -> None:
    # Given the deciding process dies after recording the decision, before the token is sent
    stored = h.service.request(pending())
    h.clock[0] = T0 + timedelta(hours=1)
    h.sfn.send_error = RuntimeError("the process died")
    with pytest.raises(RuntimeError):
        h.service.decide(stored.approval_id, approve=False, decided_by="alice", channel="api")
    record = h.service.get(stored.approval_id)
    assert record is not None and record.status == "denied" and record.delivered_at is None
    assert h.service.list_pending("acme") == []  # decided: nobody is asked again
    # When the sweeper runs (a fresh decision is left alone for a minute: it may still be sent)
    h.sfn.send_error = None
    assert h.service.sweep() == []
    h.clock[0] = T0 + timedelta(hours=1, minutes=2)
    (settled,) = h.service.sweep()
    # Then the task gets the denial once, and the approval is delivered
    assert [(t, e) for t, e, _ in h.sfn.failed] == [(TOKEN, DENIED_ERROR)]
    assert settled.status == "denied" and settled.delivered_at == T0 + timedelta(hours=1, minutes=2)
    assert h.service.sweep() == [] and len(h.sfn.failed) == 1


def test_a_swept_decision_whose_task_stopped_waiting_is_closed_as_expired(h: Harness) -> None:
    stored = h.service.request(pending())
    h.sfn.send_error = RuntimeError("the process died")
    with pytest.raises(RuntimeError):
        h.service.decide(stored.approval_id, approve=True, decided_by="alice", channel="api")
    h.sfn.send_error = ApprovalClosed("the task is no longer waiting for this approval")
    h.clock[0] = T0 + timedelta(minutes=5)
    (settled,) = h.service.sweep()
    assert settled.status == "expired"
    assert h.service.sweep() == []


def test_a_delivered_decision_is_never_swept(h: Harness) -> None:
    stored = h.service.request(pending())
    decided = h.service.decide(stored.approval_id, approve=True, decided_by="al", channel="api")
    assert decided.delivered_at is not None
    h.clock[0] = T0 + timedelta(days=1)
    assert h.service.sweep() == [] and len(h.sfn.succeeded) == 1


# --- on the in-memory repository alone (no emulator) ------------------------------------------


def test_on_the_in_memory_repository_a_decision_is_made_once() -> None:
    # Given the service on the in-memory repository and a fake Step Functions
    repository = InMemoryApprovalRepository()
    h = make_harness(approval_settings(), repository)
    stored = h.service.request(pending())
    assert repository.list_pending("acme") == [stored]
    assert repository.notified(stored.approval_id) == {
        "slack",
        "email:alice@acme.example",
        "email:bob@acme.example",
    }
    # When alice approves, the task gets its token once and the decision is delivered
    decided = h.service.decide(stored.approval_id, approve=True, decided_by="alice", channel="api")
    assert decided.status == "approved" and decided.delivered_at == T0
    assert [token for token, _ in h.sfn.succeeded] == [TOKEN]
    assert repository.list_pending("acme") == [] and repository.undelivered(T0) == []
    # Then a second decision is refused, and nothing more reaches the task
    with pytest.raises(ApprovalClosed, match="already approved by alice"):
        h.service.decide(stored.approval_id, approve=False, decided_by="bob", channel="api")
    assert len(h.sfn.succeeded) == 1 and h.sfn.failed == []
    assert repository.get(stored.approval_id) == decided
