"""Notification ports: e-mail (SES) and Slack (Web API), each behind a small Protocol.

The send_email and post_slack_message tools and the approval notices both go through these, so
tests inject fakes and the local cloud swaps the far end for files: an ``.eml`` per message (SES
still sends, through moto, so its record of sent mail is complete) and a JSON-lines Slack sink.
Every failure is a ``ToolUnavailable``: to a tool it is a result the model sees; to an approval
request it is a retryable error.
"""

from __future__ import annotations

import email.policy
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

from docket import aws
from docket.config import Settings
from docket.errors import InvalidToolArguments, ToolUnavailable

SLACK_POST_MESSAGE_URL = "https://slack.com/api/chat.postMessage"


@dataclass(frozen=True)
class EmailMessage:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    cc: tuple[str, ...] = ()
    sender: str | None = None


class Emailer(Protocol):
    def send(self, message: EmailMessage) -> str:
        """Send it; return the provider's message id."""
        ...


class SlackPoster(Protocol):
    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        """Post it; return the message's id (Slack's ``ts``)."""
        ...


# --- e-mail ------------------------------------------------------------------------------------


def to_mime(message: EmailMessage, default_sender: str) -> MimeMessage:
    """The message as MIME: text, plus an HTML alternative when there is one.

    Line breaks in the subject become spaces: a model-written subject must not add headers.
    """
    mime = MimeMessage(policy=email.policy.SMTP)
    sender = message.sender or default_sender
    try:
        mime["From"] = sender
        mime["To"] = ", ".join(message.to)
        if message.cc:
            mime["Cc"] = ", ".join(message.cc)
        mime["Subject"] = " ".join(message.subject.split())
    except (ValueError, TypeError) as exc:
        raise InvalidToolArguments(f"the e-mail cannot be addressed: {exc}") from exc
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime


class SesEmailer:
    """SES ``SendRawEmail``: SES reads the recipients from the To and Cc headers."""

    def __init__(self, sender: str) -> None:
        self.sender = sender

    def send(self, message: EmailMessage) -> str:
        return self.send_mime(to_mime(message, self.sender))

    def send_mime(self, mime: MimeMessage) -> str:
        try:
            resp = aws.client("ses").send_raw_email(
                Source=str(mime["From"]), RawMessage={"Data": mime.as_bytes()}
            )
        except Exception as exc:
            raise ToolUnavailable(f"SES could not send the e-mail: {exc}") from exc
        return str(resp["MessageId"])


class LocalOutboxEmailer:
    """The local cloud's e-mailer: sends through (moto's) SES and keeps each message as an
    ``.eml`` file, so a person or a test can open what was sent."""

    def __init__(self, ses: SesEmailer, outbox_dir: Path) -> None:
        self.ses = ses
        self.outbox_dir = Path(outbox_dir)

    def send(self, message: EmailMessage) -> str:
        mime = to_mime(message, self.ses.sender)
        message_id = self.ses.send_mime(mime)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", message_id)
        try:
            self.outbox_dir.mkdir(parents=True, exist_ok=True)
            (self.outbox_dir / f"{stamp}-{safe_id}.eml").write_bytes(mime.as_bytes())
        except OSError as exc:
            raise ToolUnavailable(f"cannot write the local outbox: {exc}") from exc
        return message_id


def get_emailer(settings: Settings) -> Emailer:
    ses = SesEmailer(settings.email_sender)
    if settings.email_outbox_dir is not None:
        return LocalOutboxEmailer(ses, settings.email_outbox_dir)
    return ses


# --- Slack -------------------------------------------------------------------------------------


class SlackWebApi:
    """``chat.postMessage`` with a bot token. Slack answers 200 with ``ok: false`` for most
    errors (``channel_not_found``, ``not_in_channel``...), so ``ok`` is what counts."""

    def __init__(
        self, token: str | None, *, timeout_s: float = 10.0, transport: Any = None
    ) -> None:
        self.token = token
        self.timeout_s = timeout_s
        self.transport = transport  # an httpx transport, for tests

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        import httpx

        if not self.token:
            raise ToolUnavailable("Slack is not configured (no DOCKET_SLACK_BOT_TOKEN)")
        payload: dict[str, Any] = {"channel": channel, "text": text}
        if blocks:
            payload["blocks"] = blocks
        try:
            with httpx.Client(timeout=self.timeout_s, transport=self.transport) as http:
                resp = http.post(
                    SLACK_POST_MESSAGE_URL,
                    json=payload,
                    headers={"Authorization": f"Bearer {self.token}"},
                )
            data = resp.json() if resp.status_code < 500 else {}
        except (httpx.HTTPError, ValueError) as exc:
            raise ToolUnavailable(f"Slack could not be reached: {exc}") from exc
        if resp.status_code >= 400 or not isinstance(data, dict) or data.get("ok") is not True:
            error = data.get("error") if isinstance(data, dict) else None
            raise ToolUnavailable(
                f"Slack refused the message: {error or f'HTTP {resp.status_code}'}"
            )
        return str(data.get("ts") or "")


class SlackSink:
    """The local cloud's Slack: one JSON line per message, appended to a file."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        ts = f"{time.time():.6f}"
        line = json.dumps({"channel": channel, "text": text, "blocks": blocks or [], "ts": ts})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as sink:
                sink.write(line + "\n")
        except OSError as exc:
            raise ToolUnavailable(f"cannot write the local Slack sink: {exc}") from exc
        return ts


def get_slack(settings: Settings) -> SlackPoster:
    if settings.slack_sink_path is not None:
        return SlackSink(settings.slack_sink_path)
    token = settings.slack_bot_token
    if settings.slack_secret_name:
        from docket.secrets import secret_value

        token = secret_value(settings.slack_secret_name, "bot_token") or None
    return SlackWebApi(token)
