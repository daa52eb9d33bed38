"""Approvals of high-risk tool calls: stored once, notified (Slack, e-mail), decided once.

Storage is the ``ApprovalRepository`` port (``docket.agent.ports``): the DynamoDB adapter
(``docket.agent.approval_store``, the default: its module says how items are laid out) or the
in-memory one (``docket.agent.memory``). A record, while pending, is in its tenant's pending list
(oldest first); the channels already told ("slack", "email:{address}") are kept with it, so a
retried request never sends a notice twice.

The approval id is derived from (task, step, call id): a retried request maps to the same record
and the create-once makes it a no-op. Deciding is one update conditional on ``pending → approved
| denied``: that update, not the Step Functions call, is the single-use guarantee, so a crash or a
double click can never approve twice. The raw task token stays in the store: no link, message,
page or API answer carries it (``ApprovalRecord.public()`` leaves it out).

This module holds the decisions; what people read is ``docket.agent.messages`` (Slack blocks,
e-mails), and what is signed is ``docket.agent.signing`` (links, Slack requests).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Literal

from docket.agent.approval_store import UNDELIVERED, DynamoApprovalRepository
from docket.agent.messages import approval_email, closed_message, slack_blocks
from docket.agent.models import ApprovalRecord, ApprovalStatus
from docket.agent.notify import Emailer, SlackPoster, get_emailer, get_slack
from docket.agent.ports import ApprovalRepository
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

__all__ = ["UNDELIVERED", "ApprovalService", "Channel", "approval_id_for"]

Channel = Literal["email", "slack", "api"]


def approval_id_for(task_id: str, step: int, call_id: str) -> str:
    """The same (task, step, call) always gets the same id: retries cannot create a second."""
    digest = hashlib.sha256(f"{task_id}\x1f{step}\x1f{call_id}".encode()).hexdigest()
    return "apv_" + digest[:24]


class ApprovalService:
    def __init__(
        self,
        settings: Settings,
        *,
        table_name: str | None = None,
        repository: ApprovalRepository | None = None,
        stepfunctions: StepFunctions | None = None,
        emailer_factory: Callable[[], Emailer] | None = None,
        slack_factory: Callable[[], SlackPoster] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.table_name = table_name or settings.agent_table
        self.repository: ApprovalRepository = (
            repository if repository is not None else DynamoApprovalRepository(self.table_name)
        )
        self.stepfunctions = stepfunctions or StepFunctions()
        self._emailer = emailer_factory or (lambda: get_emailer(settings))
        self._slack = slack_factory or (lambda: get_slack(settings))
        self._now = clock
        self.links = LinkSigner(settings, clock)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApprovalService:
        """The deployed wiring: the agent table, Step Functions, SES or the outbox, Slack."""
        return cls(settings)

    # --- request -------------------------------------------------------------------------------

    def request(self, record: ApprovalRecord) -> ApprovalRecord:
        """Store the approval (once per task, step and call) and notify the approvers (once each).

        A repeat with a new task token (a retried waitForTaskToken state gets a new one) refreshes
        the stored token while the approval is pending, so the decision reaches the live wait.
        """
        approval_id = approval_id_for(record.task_id, record.step, record.call_id)
        record = record.model_copy(update={"approval_id": approval_id, "status": "pending"})
        notified: set[str] = set()
        if not self.repository.create(record):
            existing = self.repository.get(approval_id)
            if existing is None:  # created and gone between the two calls: nothing to notify
                raise StoreUnavailable(f"approval {approval_id} vanished while being requested")
            if existing.status != "pending":
                return existing
            notified = self.repository.notified(approval_id)
            if existing.task_token != record.task_token:
                self._refresh_token(existing, record)
            record = existing.model_copy(
                update={"task_token": record.task_token, "execution_arn": record.execution_arn}
            )
        self._notify(record, notified)
        return record

    def _refresh_token(self, existing: ApprovalRecord, record: ApprovalRecord) -> None:
        self.repository.update(
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
            self.repository.mark_notified(record.approval_id, name)
            notified.add(name)
        if failures and not notified:
            raise ToolUnavailable(
                f"approval {record.approval_id} is stored but no approver could be notified: "
                + "; ".join(failures)
            )

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
        return self.repository.get(approval_id)

    def list_pending(self, tenant: str) -> list[ApprovalRecord]:
        """The tenant's pending approvals, oldest first."""
        return self.repository.list_pending(tenant)

    def for_task(self, task_id: str) -> list[ApprovalRecord]:
        """A task's approvals, oldest first."""
        return self.repository.for_task(task_id)

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
        # recorded as undelivered first (decided, no delivered_at): a crash before the token is
        # sent leaves it for the sweeper, not for the approval timeout
        decided = self.repository.update(
            approval_id,
            expect="pending",
            set_={
                "status": status,
                "decided_by": decided_by,
                "decided_at": now,
                "decision_channel": channel,
                "comment": comment or None,
                "delivered_at": None,
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
            delivered = self.repository.update(
                decided.approval_id, expect=decided.status, set_={"delivered_at": self._now()}
            )
        except StoreUnavailable:  # sent: never reopen it; the sweeper finds it closed later
            logger.exception("decision delivered but not marked", approval_id=decided.approval_id)
            return decided
        return delivered or decided

    def sweep(self, older_than: timedelta = timedelta(minutes=1)) -> list[ApprovalRecord]:
        """Decisions recorded but never delivered (the deciding process died between the two):
        send them now. A task that no longer waits closes the approval as expired. Runs on a
        schedule and when the local cloud starts; returns what it settled."""
        settled = []
        for record in self.repository.undelivered(self._now() - older_than):
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
                done = self.repository.update(
                    record.approval_id,
                    expect="pending",
                    set_={"status": "cancelled", "decided_at": self._now()},
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

    def _expire(
        self, record: ApprovalRecord, expect: ApprovalStatus, now: datetime
    ) -> ApprovalRecord:
        expired = self.repository.update(
            record.approval_id, expect=expect, set_={"status": "expired", "decided_at": now}
        )
        return expired or self._require(record.approval_id)

    def _reopen(self, decided: ApprovalRecord) -> None:
        try:
            self.repository.update(
                decided.approval_id,
                expect=decided.status,
                set_={"status": "pending"},
                remove=("decided_by", "decided_at", "decision_channel", "comment"),
            )
        except StoreUnavailable:
            logger.exception("cannot reopen approval", approval_id=decided.approval_id)

    def _require(self, approval_id: str) -> ApprovalRecord:
        record = self.get(approval_id)
        if record is None:
            raise NotFound(f"approval {approval_id} not found")
        return record


def _same_person(a: str, b: str) -> bool:
    """Identities compared as an approver types them (e-mail addresses are case-insensitive)."""
    return a.strip().casefold() == b.strip().casefold()
