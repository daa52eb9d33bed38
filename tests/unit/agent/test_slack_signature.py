"""Slack request signatures (v0): fresh timestamp, HMAC of the raw body, constant-time compare."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from docket.agent.signing import verify_slack_request
from docket.config import Settings
from docket.errors import InvalidSignature

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_763_726_400
BODY = "payload=%7B%22type%22%3A%22block_actions%22%7D"
SETTINGS = Settings(slack_signing_secret=SECRET)


def sign(body: str, ts: int = NOW, secret: str = SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={mac}"}


def test_a_signed_request_is_accepted() -> None:
    verify_slack_request(SETTINGS, sign(BODY), BODY, now=NOW + 10)
    verify_slack_request(SETTINGS, sign(BODY), BODY.encode(), now=NOW)  # bytes body
    lowered = {k.lower(): v for k, v in sign(BODY).items()}  # API Gateway lower-cases headers
    verify_slack_request(SETTINGS, lowered, BODY, now=NOW - 299)


@pytest.mark.parametrize(
    "headers,body,now",
    [
        pytest.param(sign(BODY, secret="another-secret"), BODY, NOW, id="wrong-secret"),
        pytest.param(sign(BODY), BODY + "&x=1", NOW, id="tampered-body"),
        pytest.param(sign(BODY), BODY, NOW + 301, id="older-than-5-minutes"),
        pytest.param(sign(BODY), BODY, NOW - 301, id="from-the-future"),
        pytest.param(sign(BODY, ts=NOW - 600), BODY, NOW, id="old-timestamp-signed"),
        pytest.param({"X-Slack-Request-Timestamp": str(NOW)}, BODY, NOW, id="no-signature"),
        pytest.param({"X-Slack-Signature": sign(BODY)["X-Slack-Signature"]}, BODY, NOW, id="no-ts"),
        pytest.param(
            {**sign(BODY), "X-Slack-Request-Timestamp": "17637264OO"}, BODY, NOW, id="bad-ts"
        ),
        pytest.param(
            {**sign(BODY), "X-Slack-Signature": sign(BODY)["X-Slack-Signature"][3:]},
            BODY,
            NOW,
            id="no-v0-prefix",
        ),
    ],
)
def test_a_forged_or_stale_request_is_refused(headers: dict[str, str], body: str, now: int) -> None:
    with pytest.raises(InvalidSignature):
        verify_slack_request(SETTINGS, headers, body, now=now)


def test_the_timestamp_is_part_of_the_signature() -> None:
    headers = {**sign(BODY), "X-Slack-Request-Timestamp": str(NOW + 60)}  # replayed, re-dated
    with pytest.raises(InvalidSignature):
        verify_slack_request(SETTINGS, headers, BODY, now=NOW + 60)
