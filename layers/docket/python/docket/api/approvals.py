"""Approval routes: the JSON API (JWT), the e-mailed approval page (signed link + CSRF) and the
Slack interactivity endpoint (Slack's signing secret).

The page and the Slack endpoint have no bearer token: the gateway lets them through and they
authenticate themselves. The page is plain HTML without script, every value escaped (an e-mail
body written by a model may hold markup); its form is protected by a double-submit cookie (an
HMAC of the cookie and the approval id in a hidden field) and an Origin check. A GET never
decides anything, so a mail scanner that opens links cannot approve.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from pydantic import BaseModel, ConfigDict, Field

from docket import errors
from docket.agent.approvals import ApprovalService
from docket.agent.models import ApprovalRecord
from docket.agent.signing import signing_key, verify_slack_request
from docket.auth import principal_from_event, require
from docket.config import Settings, get_settings
from docket.models import Principal

router = APIGatewayHttpRouter()

APPROVAL_ID = re.compile(r"^apv_[0-9a-f]{24}$")
ApprovalId = Annotated[str, PathParam(pattern=APPROVAL_ID.pattern)]
APPROVER_SCOPE = "approvals"
APPROVER_GROUP = "approvers"
CSRF_COOKIE = "docket_csrf"
_CSRF_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 random bytes, base64url
MAX_COMMENT = 2000
HTML = "text/html; charset=utf-8"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def service() -> ApprovalService:
    """The approval service (cheap to build: clients are cached per process)."""
    return ApprovalService.from_settings(get_settings())


# --- JSON API (JWT) ------------------------------------------------------------------------------


class DecisionRequest(BaseModel):
    # no coercion: "rerank": 0 or "size_bytes": false is a client bug, not a value
    model_config = ConfigDict(strict=True)

    decision: Literal["approve", "deny"]
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


def _approver() -> Principal:
    """The caller, who must hold the ``approvals`` scope or be in the ``approvers`` group."""
    return require(
        principal_from_event(router.current_event.raw_event),
        scope=APPROVER_SCOPE,
        group=APPROVER_GROUP,
        to="deciding approvals",
    )


@router.get("/approvals")
def list_approvals() -> dict[str, Any]:
    caller = _approver()
    return {"approvals": [a.public() for a in service().list_pending(caller.tenant)]}


@router.post("/approvals/<approval_id>/decision")
def decide_approval(approval_id: ApprovalId, body: DecisionRequest) -> dict[str, Any]:
    caller = _approver()
    approvals = service()
    record = approvals.get(approval_id)
    if record is None or record.tenant != caller.tenant:  # another tenant's: as if absent
        raise errors.NotFound(f"approval {approval_id} not found")
    decided = approvals.decide(
        approval_id,
        approve=body.decision == "approve",
        decided_by=caller.subject,
        channel="api",
        comment=body.comment,
    )
    return {"approval": decided.public()}


# --- the approval page (signed link, CSRF) -------------------------------------------------------


def _csrf_token(settings: Settings, cookie: str, approval_id: str) -> str:
    key = signing_key(settings, "approval_link_secret")
    msg = f"docket-approval-csrf\x1f{cookie}\x1f{approval_id}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _cookie_value() -> str | None:
    for cookie in router.current_event.cookies:
        name, _, value = cookie.partition("=")
        if name.strip() == CSRF_COOKIE and _CSRF_VALUE.match(value.strip()):
            return value.strip()
    return None


def _csrf_cookie(settings: Settings, value: str) -> Cookie:
    base = urlsplit(settings.approval_base_url)
    local_http = base.scheme == "http" and base.hostname in ("127.0.0.1", "localhost", "::1")
    return Cookie(
        name=CSRF_COOKIE,
        value=value,
        path="/approvals/",
        secure=not local_http,
        http_only=True,
        same_site=SameSite.STRICT_MODE,
    )


def _page(status: int, title: str, body: str, cookies: list[Cookie] | None = None) -> Response[str]:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return Response(
        status_code=status, content_type=HTML, body=document, headers=PAGE_HEADERS, cookies=cookies
    )


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:48rem;padding:0 1rem;"
    "color:#1d1d1f}dt{font-weight:600;margin-top:1rem}dd{margin:0.25rem 0 0 0}"
    "pre{white-space:pre-wrap;word-break:break-word;background:#f5f5f7;padding:0.75rem;"
    "border-radius:6px;margin:0}textarea{width:100%;min-height:4rem}"
    "button{font-size:1rem;padding:0.5rem 1.25rem;margin:1rem 0.5rem 0 0;cursor:pointer}"
    "button[value=approve]{background:#1a7f37;color:#fff;border:0;border-radius:6px}"
    "button[value=deny]{background:#cf222e;color:#fff;border:0;border-radius:6px}"
    ".meta{color:#57606a}"
)


def _p(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{html.escape(text)}</p>"


def _invalid_link() -> Response[str]:
    return _page(
        403,
        "Link not valid",
        _p("This link is not valid or has expired. Ask for a new one if you still need it."),
    )


def _not_found() -> Response[str]:
    return _page(404, "Approval not found", _p("There is no such approval request."))


def _closed(message: str) -> Response[str]:
    return _page(409, "No longer open", _p(message))


def _unavailable() -> Response[str]:
    return _page(
        503, "Try again", _p("The service is unavailable right now. Try again in a minute.")
    )


def _describe(record: ApprovalRecord) -> str:
    rows = "".join(
        f'<dt>{html.escape(label)}</dt><dd><pre data-label="{html.escape(label)}">'
        f"{html.escape(value)}</pre></dd>"
        for label, value in record.summary
    )
    return (
        f"<p>{html.escape(record.requester)} asked the docket agent to run "
        f"<strong>{html.escape(record.tool)}</strong>.</p><dl>{rows}</dl>"
        f'<p class="meta">Task <code>{html.escape(record.task_id)}</code> · request '
        f"<code>{html.escape(record.approval_id)}</code> · expires "
        f"{html.escape(record.expires_at.strftime('%Y-%m-%d %H:%M UTC'))}</p>"
    )


@router.get("/approvals/<approval_id>")
def approval_page(approval_id: str) -> Response[str]:
    settings = get_settings()
    if not APPROVAL_ID.match(approval_id):
        return _not_found()
    approvals = service()
    sig = router.current_event.get_query_string_value("sig")
    try:
        approver = approvals.verify_link(approval_id, sig)
        record = approvals.get(approval_id)
        if record is None:
            return _not_found()
        approvals.check_open(record)
    except errors.InvalidSignature:
        return _invalid_link()
    except errors.ApprovalClosed as exc:
        return _closed(exc.message)
    except errors.StoreUnavailable:
        return _unavailable()
    cookie = _cookie_value() or secrets.token_urlsafe(32)
    form = (
        f'<form method="post" action="/approvals/{approval_id}">'
        f'<input type="hidden" name="sig" value="{html.escape(sig or "")}">'
        f'<input type="hidden" name="csrf" value="{_csrf_token(settings, cookie, approval_id)}">'
        f'<label for="comment">Comment (optional)</label>'
        f'<textarea id="comment" name="comment" maxlength="{MAX_COMMENT}"></textarea>'
        '<button type="submit" name="decision" value="approve">Approve</button>'
        '<button type="submit" name="decision" value="deny">Deny</button></form>'
        + _p(f"You are deciding as {approver}.", "meta")
    )
    return _page(
        200,
        f"Approve {record.tool}?",
        _describe(record) + form,
        cookies=[_csrf_cookie(settings, cookie)],
    )


def _same_origin(settings: Settings) -> bool:
    """Defence in depth behind the CSRF token: a browser's POST must come from the approval site.

    Browsers send ``Origin`` with a form POST, but as ``null`` when the page's referrer policy is
    ``no-referrer`` (ours is: the link's signature must not leak), so for ``null`` the Fetch
    Metadata header decides: it must say ``same-origin``. Any other cross-site sign is refused.
    """
    headers = router.current_event.headers
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return fetch_site == "same-origin"
    base = urlsplit(settings.approval_base_url)
    return origin.rstrip("/").lower() == f"{base.scheme}://{base.netloc}".lower()


@router.post("/approvals/<approval_id>")
def approval_form(approval_id: str) -> Response[str]:
    settings = get_settings()
    if not APPROVAL_ID.match(approval_id):
        return _not_found()
    form = {k: v[0] for k, v in parse_qs(router.current_event.decoded_body or "").items()}
    approvals = service()
    try:
        approver = approvals.verify_link(approval_id, form.get("sig"))
    except errors.InvalidSignature:
        return _invalid_link()
    cookie = _cookie_value()
    expected = _csrf_token(settings, cookie, approval_id) if cookie else ""
    if (
        not cookie
        or not _same_origin(settings)
        or not hmac.compare_digest(expected.encode(), form.get("csrf", "").encode())
    ):
        return _page(
            403,
            "Form not accepted",
            _p("This form could not be verified. Open the link from your e-mail again and retry."),
        )
    decision = form.get("decision")
    comment = (form.get("comment") or "").strip() or None
    if decision not in ("approve", "deny") or len(comment or "") > MAX_COMMENT:
        return _page(400, "Form not accepted", _p("Choose Approve or Deny (comment: 2000 chars)."))
    try:
        record = approvals.decide(
            approval_id,
            approve=decision == "approve",
            decided_by=approver,
            channel="email",
            comment=comment,
        )
    except errors.NotFound:
        return _not_found()
    except errors.Forbidden as exc:
        return _page(403, "Not yours to approve", _p(exc.message))
    except errors.ApprovalClosed as exc:
        return _closed(exc.message)
    except errors.StoreUnavailable:
        return _unavailable()
    outcome = (
        "The task will go on and run it."
        if record.status == "approved"
        else "It will not run, and the task is told so."
    )
    title = "Approved" if record.status == "approved" else "Denied"
    done = f"You {record.status} this request as {record.decided_by}. {outcome}"
    return _page(200, title, _p(done) + _describe(record))


# --- Slack interactivity -------------------------------------------------------------------------


def _slack_reply(text: str) -> dict[str, Any]:
    return {"response_type": "in_channel", "replace_original": True, "text": text}


@router.post("/slack/interactions")
def slack_interactions() -> dict[str, Any]:
    """Approve/Deny buttons. The signature covers the raw body, so it is checked before the body
    is parsed (API Gateway may hand the body over base64-encoded: decoded_body undoes that)."""
    event = router.current_event
    raw = event.decoded_body or ""
    verify_slack_request(get_settings(), dict(event.headers), raw)
    try:
        payload = json.loads(parse_qs(raw).get("payload", ["{}"])[0])
        action = payload["actions"][0]
        user = payload.get("user") or {}
        action_id, approval_id = str(action["action_id"]), str(action["value"])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise errors.InvalidRequest("not a Slack block action payload") from None
    if action_id not in ("approve", "deny") or not APPROVAL_ID.match(approval_id):
        raise errors.InvalidRequest(f"unknown action {action_id!r}")
    who = f"slack:{user.get('id')} ({user.get('username') or user.get('name')})"
    try:
        record = service().decide(
            approval_id, approve=action_id == "approve", decided_by=who, channel="slack"
        )
    except errors.NotFound:
        return _slack_reply("This approval request no longer exists.")
    except errors.Forbidden as exc:
        return _slack_reply(exc.message)
    except errors.ApprovalClosed as exc:
        return _slack_reply(exc.message)
    verb = "Approved" if record.status == "approved" else "Denied"
    return _slack_reply(f"{verb} by <@{user.get('id')}>: {record.tool} ({record.approval_id}).")
