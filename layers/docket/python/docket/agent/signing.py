"""Signing and checking what crosses the trust boundary of approvals: the e-mailed links (HMAC
over approval, approver and expiry, one link per approver) and Slack's request signatures.
Secrets come from ``signing_key``: Secrets Manager on AWS, refused if left at the shipped
default outside the local cloud."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from docket.config import Settings
from docket.errors import ConfigurationError, InvalidSignature
from docket.models import utcnow

SLACK_MAX_AGE_S = 5 * 60


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """``{approver, base64url}.{expiry, epoch seconds}.{HMAC-SHA256, base64url}`` links."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self._now = clock

    def _mac(self, approval_id: str, approver: str, exp: int) -> str:
        key = signing_key(self.settings, "approval_link_secret")
        msg = f"docket-approval-link\x1f{approval_id}\x1f{approver}\x1f{exp}".encode()
        return _b64(hmac.new(key, msg, hashlib.sha256).digest())

    def sign(self, approval_id: str, approver: str, expires_at: datetime) -> str:
        """``{approver, base64url}.{expiry, epoch seconds}.{HMAC-SHA256, base64url}``."""
        exp = int(expires_at.timestamp())
        return f"{_b64(approver.encode())}.{exp}.{self._mac(approval_id, approver, exp)}"

    def link(self, approval_id: str, approver: str, expires_at: datetime) -> str:
        base = self.settings.approval_base_url.rstrip("/")
        return f"{base}/approvals/{approval_id}?sig={self.sign(approval_id, approver, expires_at)}"

    def verify(self, approval_id: str, sig: str | None) -> str:
        """The approver the link was made for; ``InvalidSignature`` if forged, altered or old."""
        parts = (sig or "").split(".")
        if len(parts) != 3 or not _EPOCH_RE.fullmatch(parts[1]):
            raise InvalidSignature("this link is not valid")
        try:
            approver = _unb64(parts[0]).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidSignature("this link is not valid") from None
        exp = int(parts[1])
        expected = self._mac(approval_id, approver, exp)
        if not hmac.compare_digest(expected.encode(), parts[2].encode()):
            raise InvalidSignature("this link is not valid")
        if exp <= self._now().timestamp():
            raise InvalidSignature("this link has expired")
        return approver


_EPOCH_RE = re.compile(r"[0-9]{1,12}")  # ASCII digits only: "²".isdigit() is True, int() fails
_DEFAULT_SECRET_MARK = "change-me"


def signing_key(settings: Settings, name: str) -> bytes:
    """A signing secret as bytes. Outside the local cloud, the defaults shipped in the source (or
    anything short) are refused, so a deployment that forgot a secret fails closed instead of
    accepting links and Slack requests anyone could sign."""
    value: str = _from_secrets_manager(settings, name) or getattr(settings, name)
    if settings.auth_mode != "local" and (_DEFAULT_SECRET_MARK in value or len(value) < 32):
        raise ConfigurationError(f"DOCKET_{name.upper()} must be set to a random secret")
    return value.encode()


def _from_secrets_manager(settings: Settings, name: str) -> str | None:
    """On AWS the keys are read at run time (docket.secrets), not from the environment."""
    from docket.secrets import secret_value

    if name == "approval_link_secret" and settings.approval_link_secret_name:
        return secret_value(settings.approval_link_secret_name)
    if name == "slack_signing_secret" and settings.slack_secret_name:
        return secret_value(settings.slack_secret_name, "signing_secret")
    return None


def verify_slack_request(
    settings: Settings,
    headers: Mapping[str, str],
    raw_body: bytes | str,
    now: float | None = None,
) -> None:
    """Slack's v0 signature: a fresh timestamp (5 minutes) and an HMAC of ``v0:{ts}:{body}``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ts = lowered.get("x-slack-request-timestamp", "")
    signature = lowered.get("x-slack-signature", "")
    if not _EPOCH_RE.fullmatch(ts) or not signature:
        raise InvalidSignature("missing Slack signature headers")
    current = time.time() if now is None else now
    if abs(current - int(ts)) > SLACK_MAX_AGE_S:
        raise InvalidSignature("the Slack request is too old")
    body = raw_body.encode() if isinstance(raw_body, str) else raw_body
    mac = hmac.new(
        signing_key(settings, "slack_signing_secret"),
        b"v0:" + ts.encode() + b":" + body,
        hashlib.sha256,
    )
    if not hmac.compare_digest(("v0=" + mac.hexdigest()).encode(), signature.encode()):
        raise InvalidSignature("the Slack signature does not match")
