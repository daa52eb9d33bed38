"""Approvals of high-risk tool calls: stored once, notified (Slack, e-mail), decided once.

Storage (the agent table):

- ``pk APPROVAL#{id}``, ``sk APPROVAL``: the record; while pending it carries ``gsi1pk
  PENDING#{tenant}`` / ``gsi1sk`` created_at, so one Query of ``gsi1`` lists a tenant's pending
  approvals, oldest first. ``notified`` is the set of channels already told ("slack",
  "email:{address}"), so a retried request never sends a notice twice.
- ``pk TASKAPPROVALS#{task_id}``, ``sk APPROVAL#{id}``: a key-only pointer, written in the same
  transaction, so a task's approvals are one Query (no Scan), in a partition of its own that the
  task's timeline query never reads.

The approval id is derived from (task, step, call id): a retried request maps to the same item and
the conditional put makes it a no-op. Deciding is one conditional update ``pending → approved |
denied``: that update, not the Step Functions call, is the single-use guarantee, so a crash or a
double click can never approve twice. The raw task token stays in the item: no link, message,
page or API answer carries it (``ApprovalRecord.public()`` leaves it out).

This module holds the decisions and their storage; what people read is ``docket.agent.messages``
(Slack blocks, e-mails), and what is signed is ``docket.agent.signing`` (links, Slack requests).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from docket import aws
from docket.agent.messages import approval_email, closed_message, slack_blocks
from docket.agent.models import ApprovalRecord, ApprovalStatus
from docket.agent.notify import Emailer, SlackPoster, get_emailer, get_slack
from docket.agent.signing import LinkSigner
from docket.agent.workflow import DENIED_ERROR, StepFunctions
from docket.config import Settings
from docket.errors import (
    ApprovalClosed,
    Forbidden,
    NotFound,
    StoreUnavailable,
    ToolError,
    ToolUnavailable,
)
from docket.models import utcnow
from docket.observability import logger
from docket.store.dynamodb import codec

Channel = Literal["email", "slack", "api"]

_JSON_FIELDS = ("arguments", "summary")  # stored as JSON text: DynamoDB numbers drop floats


# gsi1 partition of decisions not yet delivered to their task (ApprovalService.sweep)
UNDELIVERED = "UNDELIVERED"


def approval_id_for(task_id: str, step: int, call_id: str) -> str:
    """The same (task, step, call) always gets the same id: retries cannot create a second."""
    digest = hashlib.sha256(f"{task_id}\x1f{step}\x1f{call_id}".encode()).hexdigest()
    return "apv_" + digest[:24]


def _is_conditional_failure(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


class ApprovalService:
    def __init__(
        self,
        settings: Settings,
        *,
        table_name: str | None = None,
        stepfunctions: StepFunctions | None = None,
        emailer_factory: Callable[[], Emailer] | None = None,
        slack_factory: Callable[[], SlackPoster] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.table_name = table_name or settings.agent_table
        self.stepfunctions = stepfunctions or StepFunctions()
        self._emailer = emailer_factory or (lambda: get_emailer(settings))
        self._slack = slack_factory or (lambda: get_slack(settings))
        self._now = clock
        self.links = LinkSigner(settings, clock)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApprovalService:
        """The deployed wiring: the agent table, Step Functions, SES or the outbox, Slack."""
        return cls(settings)

    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    # --- request -------------------------------------------------------------------------------

    def request(self, record: ApprovalRecord) -> ApprovalRecord:
        """Store the approval (once per task, step and call) and notify the approvers (once each).

        A repeat with a new task token (a retried waitForTaskToken state gets a new one) refreshes
        the stored token while the approval is pending, so the decision reaches the live wait.
        """
        approval_id = approval_id_for(record.task_id, record.step, record.call_id)
        record = record.model_copy(update={"approval_id": approval_id, "status": "pending"})
        notified: set[str] = set()
        if not self._create(record):
            item = self._item(approval_id)
            if item is None:  # created and gone between the two calls: nothing to notify
                raise StoreUnavailable(f"approval {approval_id} vanished while being requested")
            notified = set(item.get("notified", {}).get("SS", []))
            existing = self._record(item)
            if existing.status == "pending" and existing.task_token != record.task_token:
                self._refresh_token(existing, record)
            elif existing.status != "pending":
                return existing
            record = existing.model_copy(
                update={"task_token": record.task_token, "execution_arn": record.execution_arn}
            )
        self._notify(record, notified)
        return record

    def _create(self, record: ApprovalRecord) -> bool:
        data = self._to_item(record)
        data.update(gsi1pk=f"PENDING#{record.tenant}", gsi1sk=data["created_at"])
        pointer = {"pk": f"TASKAPPROVALS#{record.task_id}", "sk": f"APPROVAL#{record.approval_id}"}
        new = "attribute_not_exists(pk)"
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": codec.to_item(data),
                            "ConditionExpression": new,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": codec.to_item({**pointer, "approval_id": record.approval_id}),
                            "ConditionExpression": new,
                        }
                    },
                ]
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return False
            raise StoreUnavailable(f"cannot store approval {record.approval_id}: {exc}") from exc
        logger.info("approval requested", approval_id=record.approval_id, tool=record.tool)
        return True

    def _refresh_token(self, existing: ApprovalRecord, record: ApprovalRecord) -> None:
        self._update(
            existing.approval_id,
            expect="pending",
            set_={"task_token": record.task_token, "execution_arn": record.execution_arn},
        )

    def _notify(self, record: ApprovalRecord, notified: set[str]) -> None:
        """Tell each channel not yet told; raise only when every channel failed (a retry then
        tries again), since one working channel is enough to reach a decision."""
        channels: dict[str, Callable[[], None]] = {}
        slack_channel = self.settings.approval_slack_channel
        if slack_channel:
            channels["slack"] = lambda: self._notify_slack(record, slack_channel)
        for address in sorted(self.settings.approval_emails):
            channels[f"email:{address}"] = partial(self._notify_email, record, address)
        if not channels:
            logger.warning("no approval channels configured", approval_id=record.approval_id)
            return
        failures: list[str] = []
        for name, send in channels.items():
            if name in notified:
                continue
            try:
                send()
            except ToolError as exc:  # ToolUnavailable, or an address SES will not take
                logger.warning("approval notice failed", channel=name, error=exc.message)
                failures.append(f"{name}: {exc.message}")
                continue
            self._mark_notified(record.approval_id, name)
            notified.add(name)
        if failures and not notified:
            raise ToolUnavailable(
                f"approval {record.approval_id} is stored but no approver could be notified: "
                + "; ".join(failures)
            )

    def _mark_notified(self, approval_id: str, channel: str) -> None:
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self._key(approval_id),
                UpdateExpression="ADD notified :c",
                ExpressionAttributeValues={":c": {"SS": [channel]}},
            )
        except Exception as exc:
            raise StoreUnavailable(f"cannot record the notice of {approval_id}: {exc}") from exc

    def _notify_slack(self, record: ApprovalRecord, channel: str) -> None:
        text = f"Approval needed: {record.tool} requested by {record.requester}"
        self._slack().post(channel, text, slack_blocks(record))

    def _notify_email(self, record: ApprovalRecord, approver: str) -> None:
        url = self.link(record.approval_id, approver, record.expires_at)
        self._emailer().send(approval_email(record, approver, url))

    # --- signed links (docket.agent.signing) ----------------------------------------------------

    def sign(self, approval_id: str, approver: str, expires_at: datetime) -> str:
        return self.links.sign(approval_id, approver, expires_at)

    def link(self, approval_id: str, approver: str, expires_at: datetime) -> str:
        return self.links.link(approval_id, approver, expires_at)

    def verify_link(self, approval_id: str, sig: str | None) -> str:
        return self.links.verify(approval_id, sig)

    # --- reads ---------------------------------------------------------------------------------

    def get(self, approval_id: str) -> ApprovalRecord | None:
        item = self._item(approval_id)
        return self._record(item) if item else None

    def list_pending(self, tenant: str) -> list[ApprovalRecord]:
        items = self._query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues={":p": {"S": f"PENDING#{tenant}"}},
            ScanIndexForward=True,
        )
        return [self._record(i) for i in items]

    def for_task(self, task_id: str) -> list[ApprovalRecord]:
        """A task's approvals, oldest first (through the pointer items)."""
        pointers = self._query(
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={
                ":p": {"S": f"TASKAPPROVALS#{task_id}"},
                ":s": {"S": "APPROVAL#"},
            },
        )
        records = [r for p in pointers if (r := self.get(str(p["approval_id"]["S"])))]
        return sorted(records, key=lambda r: r.created_at)

    def _item(self, approval_id: str) -> dict[str, Any] | None:
        try:
            resp = self._ddb.get_item(
                TableName=self.table_name, Key=self._key(approval_id), ConsistentRead=True
            )
        except Exception as exc:
            raise StoreUnavailable(f"cannot read approval {approval_id}: {exc}") from exc
        return resp.get("Item")  # type: ignore[no-any-return]

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        try:
            while True:
                resp = self._ddb.query(TableName=self.table_name, **kwargs)
                items.extend(resp.get("Items", []))
                if "LastEvaluatedKey" not in resp:
                    return items
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except Exception as exc:
            raise StoreUnavailable(f"cannot query approvals: {exc}") from exc

    # --- decisions -----------------------------------------------------------------------------

    def check_open(self, record: ApprovalRecord) -> None:
        """``ApprovalClosed`` unless a decision can still reach the task; an approval found
        expired, or whose task has ended, is marked expired on the way."""
        if record.status != "pending":
            raise ApprovalClosed(closed_message(record))
        now = self._now()
        if now >= record.expires_at:
            raise ApprovalClosed(closed_message(self._expire(record, "pending", now)))
        if self.stepfunctions.status(record.execution_arn) != "RUNNING":
            raise ApprovalClosed(closed_message(self._expire(record, "pending", now)))

    def decide(
        self,
        approval_id: str,
        *,
        approve: bool,
        decided_by: str,
        channel: Channel,
        comment: str | None = None,
    ) -> ApprovalRecord:
        record = self.get(approval_id)
        if record is None:
            raise NotFound(f"approval {approval_id} not found")
        self.check_open(record)
        if (
            approve
            and _same_person(decided_by, record.requester)
            and record.tool not in self.settings.approval_self_approve_tools
        ):
            raise Forbidden(
                f"{decided_by} asked for this {record.tool} call and cannot approve it too: "
                "another approver must (four eyes; a requester may deny their own call)"
            )
        status: ApprovalStatus = "approved" if approve else "denied"
        now = self._now()
        # recorded as undelivered first (gsi1 UNDELIVERED): a crash before the token is sent
        # leaves it for the sweeper, not for the approval timeout
        decided = self._update(
            approval_id,
            expect="pending",
            set_={
                "status": status,
                "decided_by": decided_by,
                "decided_at": now.isoformat(),
                "decision_channel": channel,
                "comment": comment or None,
                "gsi1pk": UNDELIVERED,
                "gsi1sk": now.isoformat(),
            },
        )
        if decided is None:  # someone else decided first
            raise ApprovalClosed(closed_message(self._require(approval_id)))
        try:
            decided = self._deliver(decided)
        except ApprovalClosed:
            raise ApprovalClosed(closed_message(self._expire(decided, status, now))) from None
        except StoreUnavailable:
            self._reopen(decided)  # the decision never reached the task: let it be made again
            raise
        logger.info("approval decided", approval_id=approval_id, status=status, channel=channel)
        return decided

    def _deliver(self, decided: ApprovalRecord) -> ApprovalRecord:
        """Send the decision to the waiting task (the latest token: a retried RequestApproval
        may have renewed it), then mark it delivered."""
        who = {"approval_id": decided.approval_id, "decided_by": decided.decided_by}
        if decided.status == "approved":
            self.stepfunctions.succeed(
                decided.task_token, {"approved": True, **who, "comment": decided.comment}
            )
        else:
            cause = {**who, "comment": decided.comment}
            self.stepfunctions.fail(decided.task_token, error=DENIED_ERROR, cause=json.dumps(cause))
        try:
            delivered = self._update(
                decided.approval_id,
                expect=decided.status,
                set_={"delivered_at": self._now().isoformat()},
                remove=("gsi1pk", "gsi1sk"),
            )
        except StoreUnavailable:  # sent: never reopen it; the sweeper finds it closed later
            logger.exception("decision delivered but not marked", approval_id=decided.approval_id)
            return decided
        return delivered or decided

    def sweep(self, older_than: timedelta = timedelta(minutes=1)) -> list[ApprovalRecord]:
        """Decisions recorded but never delivered (the deciding process died between the two):
        send them now. A task that no longer waits closes the approval as expired. Runs on a
        schedule and when the local cloud starts; returns what it settled."""
        cutoff = (self._now() - older_than).isoformat()
        items = self._query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :p AND gsi1sk <= :t",
            ExpressionAttributeValues={":p": {"S": UNDELIVERED}, ":t": {"S": cutoff}},
        )
        settled = []
        for record in (self._record(i) for i in items):
            try:
                settled.append(self._deliver(record))
            except ApprovalClosed:
                settled.append(self._expire(record, record.status, self._now()))
            except StoreUnavailable:
                logger.warning("approval still undelivered", approval_id=record.approval_id)
                continue
            logger.info("undelivered decision settled", approval_id=record.approval_id)
        return settled

    def cancel_for_task(self, task_id: str) -> list[ApprovalRecord]:
        """Close the task's pending approvals (the task was stopped); returns those closed."""
        closed = []
        for record in self.for_task(task_id):
            if record.status == "pending":
                done = self._update(
                    record.approval_id,
                    expect="pending",
                    set_={"status": "cancelled", "decided_at": self._now().isoformat()},
                    remove=("gsi1pk", "gsi1sk"),
                )
                if done is not None:
                    closed.append(done)
        return closed

    def expire_for_call(self, task_id: str, step: int, call_id: str) -> ApprovalRecord | None:
        """The wait for this call's approval timed out (States.Timeout): close its record, so
        the page and the lists stop offering a decision that can no longer reach the task."""
        record = self.get(approval_id_for(task_id, step, call_id))
        if record is None or record.status != "pending":
            return record
        return self._expire(record, "pending", self._now())

    def _expire(self, record: ApprovalRecord, expect: str, now: datetime) -> ApprovalRecord:
        expired = self._update(
            record.approval_id,
            expect=expect,
            set_={"status": "expired", "decided_at": now.isoformat()},
            remove=("gsi1pk", "gsi1sk"),
        )
        return expired or self._require(record.approval_id)

    def _reopen(self, decided: ApprovalRecord) -> None:
        try:
            self._update(
                decided.approval_id,
                expect=decided.status,
                set_={
                    "status": "pending",
                    "gsi1pk": f"PENDING#{decided.tenant}",
                    "gsi1sk": decided.created_at.isoformat(),
                },
                remove=("decided_by", "decided_at", "decision_channel", "comment"),
            )
        except StoreUnavailable:
            logger.exception("cannot reopen approval", approval_id=decided.approval_id)

    def _require(self, approval_id: str) -> ApprovalRecord:
        record = self.get(approval_id)
        if record is None:
            raise NotFound(f"approval {approval_id} not found")
        return record

    def _update(
        self,
        approval_id: str,
        *,
        expect: str,
        set_: Mapping[str, Any],
        remove: tuple[str, ...] = (),
    ) -> ApprovalRecord | None:
        """Conditional on the current status; the new record, or None if the status differs."""
        names = {"#status": "status"}
        values: dict[str, Any] = {":expect": {"S": expect}}
        sets, removes = [], [f"#r{i}" for i in range(len(remove))]
        names.update({f"#r{i}": n for i, n in enumerate(remove)})
        for i, (name, value) in enumerate(set_.items()):
            if value is None:
                names[f"#n{i}"] = name
                removes.append(f"#n{i}")
                continue
            names[f"#n{i}"] = name
            values[f":v{i}"] = codec._ser.serialize(value)
            sets.append(f"#n{i} = :v{i}")
        expr = ("SET " + ", ".join(sets) if sets else "") + (
            " REMOVE " + ", ".join(removes) if removes else ""
        )
        try:
            resp = self._ddb.update_item(
                TableName=self.table_name,
                Key=self._key(approval_id),
                UpdateExpression=expr.strip(),
                ConditionExpression="attribute_exists(pk) AND #status = :expect",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return None
            raise StoreUnavailable(f"cannot update approval {approval_id}: {exc}") from exc
        return self._record(resp["Attributes"])

    # --- items ---------------------------------------------------------------------------------

    @staticmethod
    def _key(approval_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"APPROVAL#{approval_id}"}, "sk": {"S": "APPROVAL"}}

    @staticmethod
    def _to_item(record: ApprovalRecord) -> dict[str, Any]:
        data = record.model_dump(mode="json")
        for name in _JSON_FIELDS:
            data[name] = json.dumps(data[name])
        return {"pk": f"APPROVAL#{record.approval_id}", "sk": "APPROVAL", **data}

    @staticmethod
    def _record(item: dict[str, Any]) -> ApprovalRecord:
        data = codec.from_item(item)
        for name in _JSON_FIELDS:
            if isinstance(data.get(name), str):
                data[name] = json.loads(data[name])
        return ApprovalRecord.model_validate(data)


def _same_person(a: str, b: str) -> bool:
    """Identities compared as an approver types them (e-mail addresses are case-insensitive)."""
    return a.strip().casefold() == b.strip().casefold()
