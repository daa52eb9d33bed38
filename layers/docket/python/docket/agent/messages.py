"""What people read about an approval: the Slack Block Kit message, the e-mail with its signed
link, and why a closed request can no longer be decided. Text only: every value shown comes from
the record, escaped for where it goes (Slack's control characters, HTML)."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from docket.agent.models import ApprovalRecord
from docket.agent.notify import EmailMessage

_SLACK_FIELD_MAX = 1900  # Slack caps a field's text at 2000 characters


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "an unknown time"


def closed_message(record: ApprovalRecord) -> str:
    """Why a decision is no longer possible, as a sentence for a person."""
    if record.status in ("approved", "denied"):
        return (
            f"This request was already {record.status} by {record.decided_by} "
            f"at {_when(record.decided_at)}."
        )
    if record.status == "cancelled":
        return "This request was cancelled: the task was stopped."
    if record.status == "expired":
        if record.decided_at is not None and record.decided_at < record.expires_at:
            return "This request is closed: the task has already ended."
        return f"This request expired at {_when(record.expires_at)}."
    return "This request is still waiting for a decision."


def _slack_escape(text: str) -> str:
    """Slack's three control characters: a summary cannot ping @channel or fake a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_blocks(record: ApprovalRecord) -> list[dict[str, Any]]:
    """Block Kit: what will happen, then Approve and Deny buttons carrying the approval id."""
    fields = [
        {
            "type": "mrkdwn",
            "text": _cut(f"*{_slack_escape(label)}*\n{_slack_escape(value)}", _SLACK_FIELD_MAX),
        }
        for label, value in record.summary
    ]
    intro = (
        f"*{_slack_escape(record.requester)}* wants the agent to run "
        f"*{_slack_escape(record.tool)}* (task `{record.task_id}`). "
        f"The request expires {_when(record.expires_at)}."
    )
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(f"Approval needed: {record.tool}", 150)},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": intro}},
    ]
    blocks += [{"type": "section", "fields": fields[i : i + 10]} for i in range(0, len(fields), 10)]
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Approve"},
            "style": "primary",
            "action_id": "approve",
            "value": record.approval_id,
        },
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Deny"},
            "style": "danger",
            "action_id": "deny",
            "value": record.approval_id,
        },
    ]
    cut = any(
        len(f"*{_slack_escape(label)}*\n{_slack_escape(value)}") > _SLACK_FIELD_MAX
        for label, value in record.summary
    )
    if cut:  # nobody approves what they could not read: Deny here, Approve where it is shown whole
        buttons = buttons[1:]
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "Too long to show in full here: approve from the e-mailed link "
                        f"or with `docket approvals approve {record.approval_id}`.",
                    }
                ],
            }
        )
    blocks.append({"type": "actions", "block_id": "approval", "elements": buttons})
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{record.approval_id}"}]}
    )
    return blocks


def approval_email(record: ApprovalRecord, approver: str, url: str) -> EmailMessage:
    """The notice for one approver: the summary, and a link signed for them alone."""
    lines = "\n".join(
        f"{label}:\n" + "\n".join(f"    {line}" for line in value.splitlines() or [""])
        for label, value in record.summary
    )
    text = (
        f"{record.requester} asked the docket agent to run {record.tool} "
        f"(task {record.task_id}).\n\nWhat will happen:\n\n{lines}\n\n"
        f"Approve or deny it here: {url}\n\n"
        f"This link is for {approver} and expires {_when(record.expires_at)}.\n"
    )
    rows = "".join(
        f"<dt><strong>{html.escape(label)}</strong></dt><dd><pre>{html.escape(value)}</pre></dd>"
        for label, value in record.summary
    )
    body_html = (
        f"<p>{html.escape(record.requester)} asked the docket agent to run "
        f"<strong>{html.escape(record.tool)}</strong> (task {html.escape(record.task_id)}).</p>"
        f"<dl>{rows}</dl>"
        f'<p><a href="{html.escape(url)}">Review and approve or deny</a></p>'
        f"<p>This link is for {html.escape(approver)} and expires "
        f"{html.escape(_when(record.expires_at))}.</p>"
    )
    return EmailMessage(
        to=(approver,),
        subject=f"Approval needed: {record.tool} (task {record.task_id})",
        text=text,
        html=body_html,
    )
