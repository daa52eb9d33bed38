"""``send_email`` and ``post_slack_message``: side effects, each run at most once per call
through the outbox, after a person approved them (both are high risk, fixed here)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from docket.agent.models import RiskLevel
from docket.agent.tools.base import Tool, ToolContext, ToolOutput
from docket.agent.tools.services import REPLAYED, ToolServices

# a practical address: no display names, quotes, spaces or commas (nothing that can add a
# recipient or a header), a dotted domain
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def _email(value: str) -> str:
    if not _EMAIL_RE.fullmatch(value) or len(value.partition("@")[0]) > 64:
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


EmailAddress = Annotated[
    str, Field(max_length=254, json_schema_extra={"format": "email"}), AfterValidator(_email)
]


class SendEmailInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: list[EmailAddress] = Field(min_length=1, max_length=20)
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=100_000, description="plain text")
    cc: list[EmailAddress] = Field(default_factory=list, max_length=20)


class SendEmail(Tool[SendEmailInput]):
    name = "send_email"
    description = (
        "Send a plain-text e-mail. A person must approve it before it is sent, so use it only "
        "when the user asked for an e-mail, to the recipients the user named. Put everything "
        "the recipient needs in the body (tables as Markdown from make_table)."
    )
    Input = SendEmailInput
    side_effect = True

    def risk(self, args: SendEmailInput) -> RiskLevel:
        return "high"

    def summary(self, args: SendEmailInput) -> list[tuple[str, str]]:
        return [
            ("To", ", ".join(args.to)),
            ("Cc", ", ".join(args.cc) or "(none)"),
            ("Subject", args.subject),
            ("Body", args.body),
        ]

    def run(self, ctx: ToolContext, args: SendEmailInput) -> ToolOutput:
        from docket.agent.notify import EmailMessage

        services: ToolServices = ctx.services
        message = EmailMessage(
            to=tuple(args.to), subject=args.subject, text=args.body, cc=tuple(args.cc)
        )

        def effect() -> dict[str, Any]:
            message_id = services.emailer.send(message)
            return {"message_id": message_id, "to": args.to, "cc": args.cc}

        result, replayed = services.outbox.once(ctx.idempotency_key, effect)
        content = f"E-mail sent to {', '.join(result['to'])}"
        if result.get("cc"):
            content += f" (cc {', '.join(result['cc'])})"
        content += f"; message id {result['message_id']}."
        if replayed:
            content += "\n" + REPLAYED
        return ToolOutput(content=content, data={**result, "replayed": replayed})


class PostSlackMessageInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(
        pattern=r"^[#@]?[A-Za-z0-9._-]{1,80}$",
        description="a channel name (#general), a channel id (C0123ABCD) or a user (@name)",
    )
    text: str = Field(min_length=1, max_length=4000, description="Slack mrkdwn text")


class PostSlackMessage(Tool[PostSlackMessageInput]):
    name = "post_slack_message"
    description = (
        "Post a message to a Slack channel. A person must approve it before it is posted, so "
        "use it only when the user asked for a Slack message, in the channel the user named."
    )
    Input = PostSlackMessageInput
    side_effect = True

    def risk(self, args: PostSlackMessageInput) -> RiskLevel:
        return "high"

    def summary(self, args: PostSlackMessageInput) -> list[tuple[str, str]]:
        return [("Channel", args.channel), ("Message", args.text)]

    def run(self, ctx: ToolContext, args: PostSlackMessageInput) -> ToolOutput:
        services: ToolServices = ctx.services

        def effect() -> dict[str, Any]:
            return {"channel": args.channel, "ts": services.slack.post(args.channel, args.text)}

        result, replayed = services.outbox.once(ctx.idempotency_key, effect)
        content = f"Message posted to {result['channel']} (ts {result['ts']})."
        if replayed:
            content += "\n" + REPLAYED
        return ToolOutput(content=content, data={**result, "replayed": replayed})
