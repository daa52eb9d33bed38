"""Notification adapters: SES raw e-mail (moto), the local outbox, Slack's Web API and sink."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto import mock_aws

from docket import aws
from docket.agent.notify import (
    EmailMessage,
    LocalOutboxEmailer,
    SesEmailer,
    SlackSink,
    SlackWebApi,
    get_emailer,
    get_slack,
    to_mime,
)
from docket.config import Settings
from docket.errors import ToolUnavailable

SENDER = "docket@example.com"
MESSAGE = EmailMessage(
    to=("carol@example.com", "dan@example.com"),
    cc=("erin@example.com",),
    subject="Q3 figures\r\nBcc: mallory@example.com",
    text="Hello,\nthe figures are attached.\n",
    html="<p>Hello,<br>the figures are attached.</p>",
)


@pytest.fixture
def ses() -> Iterator[Any]:
    with mock_aws():
        aws.reset_clients()
        aws.client("ses").verify_email_identity(EmailAddress=SENDER)
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        yield ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    aws.reset_clients()


def test_mime_has_text_and_html_alternatives_and_a_single_line_subject() -> None:
    mime = to_mime(MESSAGE, SENDER)
    parsed = email.message_from_bytes(mime.as_bytes(), policy=email.policy.default)
    assert parsed["From"] == SENDER
    assert (
        parsed["To"] == "carol@example.com, dan@example.com" and parsed["Cc"] == "erin@example.com"
    )
    assert parsed["Subject"] == "Q3 figures Bcc: mallory@example.com"  # no header injected
    assert parsed["Bcc"] is None
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.replace("\r\n", "\n") == MESSAGE.text  # CRLF on the wire
    assert parsed.get_body(("html",)).get_content().strip() == MESSAGE.html  # type: ignore[union-attr]


def test_mime_without_html_is_plain_text() -> None:
    mime = to_mime(EmailMessage(to=("a@example.com",), subject="s", text="t"), SENDER)
    assert mime.get_content_type() == "text/plain"


def test_ses_sends_the_raw_message(ses: Any) -> None:
    message_id = SesEmailer(SENDER).send(MESSAGE)
    [sent] = ses.sent_messages
    assert sent.id == message_id and sent.source == SENDER
    assert {d.split("<")[-1].rstrip(">") for d in sent.destinations} == {
        "carol@example.com",
        "dan@example.com",
        "erin@example.com",
    }
    assert "the figures are attached." in sent.raw_data


def test_ses_refusal_is_tool_unavailable(ses: Any) -> None:
    with pytest.raises(ToolUnavailable, match="SES could not send"):
        SesEmailer("unverified@example.com").send(MESSAGE)


def test_local_outbox_sends_through_ses_and_keeps_an_eml(ses: Any, tmp_path: Path) -> None:
    emailer = get_emailer(Settings(email_sender=SENDER, email_outbox_dir=tmp_path / "outbox"))
    assert isinstance(emailer, LocalOutboxEmailer)
    message_id = emailer.send(MESSAGE)
    [eml] = (tmp_path / "outbox").glob("*.eml")
    assert eml.name.endswith(f"-{message_id}.eml")
    parsed = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Q3 figures Bcc: mallory@example.com"
    assert [m.id for m in ses.sent_messages] == [message_id]


def test_get_emailer_is_plain_ses_without_an_outbox() -> None:
    assert isinstance(get_emailer(Settings(email_outbox_dir=None)), SesEmailer)


# --- Slack ---------------------------------------------------------------------------------------


def _slack(handler: Any, token: str | None = "xoxb-test") -> SlackWebApi:
    return SlackWebApi(token, transport=httpx.MockTransport(handler))


def test_slack_posts_with_the_bot_token_and_returns_ts() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True, "ts": "1700000000.000100"})

    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    assert _slack(handler).post("#ops", "hello", blocks) == "1700000000.000100"
    [request] = seen
    assert str(request.url) == "https://slack.com/api/chat.postMessage"
    assert request.headers["authorization"] == "Bearer xoxb-test"
    assert json.loads(request.content) == {"channel": "#ops", "text": "hello", "blocks": blocks}


@pytest.mark.parametrize(
    "response,match",
    [
        (
            httpx.Response(200, json={"ok": False, "error": "channel_not_found"}),
            "channel_not_found",
        ),
        (httpx.Response(429, json={"ok": False, "error": "ratelimited"}), "ratelimited"),
        (httpx.Response(503, text="upstream down"), "HTTP 503"),
        (httpx.Response(200, text="<html>not json</html>"), "could not be reached"),
    ],
)
def test_slack_errors_are_tool_unavailable(response: httpx.Response, match: str) -> None:
    with pytest.raises(ToolUnavailable, match=match):
        _slack(lambda request: response).post("#ops", "hello")


def test_slack_connection_errors_are_tool_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ToolUnavailable, match="could not be reached"):
        _slack(handler).post("#ops", "hello")


def test_slack_without_a_token_is_tool_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("must not be called")

    with pytest.raises(ToolUnavailable, match="not configured"):
        _slack(handler, token=None).post("#ops", "hello")


def test_slack_sink_appends_json_lines(tmp_path: Path) -> None:
    poster = get_slack(Settings(slack_sink_path=tmp_path / "slack.jsonl"))
    assert isinstance(poster, SlackSink)
    first = poster.post("#ops", "one")
    poster.post("#ops", "two", [{"type": "divider"}])
    lines = [json.loads(line) for line in (tmp_path / "slack.jsonl").read_text().splitlines()]
    assert [(x["channel"], x["text"], x["blocks"]) for x in lines] == [
        ("#ops", "one", []),
        ("#ops", "two", [{"type": "divider"}]),
    ]
    assert lines[0]["ts"] == first


def test_get_slack_uses_the_web_api_without_a_sink() -> None:
    assert isinstance(get_slack(Settings(slack_sink_path=None, slack_bot_token="x")), SlackWebApi)
