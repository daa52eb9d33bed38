"""Approval routes through ``app.resolve`` with API Gateway v2 events: the JSON API (JWT), the
signed-link page with its CSRF protection, and Slack's interactivity callback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from moto import mock_aws

from docket import aws
from docket.api import approvals as approval_routes
from docket.api.app import app
from docket.config import get_settings, reset_settings
from docket.local.gateway import build_event
from tests.unit.agent.test_approvals import (
    TABLE,
    TOKEN,
    Harness,
    create_agent_table,
    make_harness,
    pending,
)

BASE = "https://approvals.example.com"
SLACK_SECRET = "unit-test-slack-signing-secret"
INJECTION = 'Hi </pre><script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'


class Context:
    function_name = "docket-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:docket-api"
    aws_request_id = "req"


CONTEXT: Any = Context()


@pytest.fixture
def h(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    for name, value in {
        "DOCKET_AGENT_TABLE": TABLE,
        "DOCKET_APPROVAL_BASE_URL": BASE,
        "DOCKET_APPROVAL_LINK_SECRET": "unit-test-link-secret",
        "DOCKET_APPROVAL_EMAILS": "alice@acme.example",
        "DOCKET_APPROVAL_SLACK_CHANNEL": "#approvals",
        "DOCKET_SLACK_SIGNING_SECRET": SLACK_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    with mock_aws():
        aws.reset_clients()
        create_agent_table()
        harness = make_harness(get_settings())
        monkeypatch.setattr(approval_routes, "service", lambda: harness.service)
        yield harness
    aws.reset_clients()
    reset_settings()


def resolve(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    claims: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event = build_event(
        method, path, {"host": "approvals.example.com", **(headers or {})}, body, claims
    )
    return app.resolve(event, CONTEXT)  # type: ignore[no-any-return]


def claims(tenant: str = "acme", scope: str = "tasks approvals", groups: str = "[]") -> dict:
    return {"sub": f"erin@{tenant}", "tenant": tenant, "scope": scope, "groups": groups}


def api(method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    out = resolve(method, path, body=raw, headers={"content-type": "application/json"}, **kw)
    return out["statusCode"], json.loads(out["body"]) if out.get("body") else None


def link_path(h: Harness, approval_id: str, approver: str = "alice@acme.example") -> str:
    record = h.service.get(approval_id)
    expires = record.expires_at if record else pending().expires_at
    return h.service.link(approval_id, approver, expires).removeprefix(BASE)


def open_page(h: Harness, path: str, cookie: str | None = None) -> dict[str, Any]:
    return resolve("GET", path, headers={"cookie": cookie} if cookie else None)


def form_of(page: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The page's hidden fields and the CSRF cookie it set."""
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page["body"]))
    [cookie] = page["cookies"]
    return fields, cookie.split(";", 1)[0]


def submit(
    approval_id: str,
    fields: dict[str, str],
    cookie: str | None,
    *,
    origin: str | None = BASE,
    fetch_site: str | None = None,
    **extra: str,
) -> dict[str, Any]:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["cookie"] = cookie
    if origin:
        headers["origin"] = origin
    if fetch_site:
        headers["sec-fetch-site"] = fetch_site
    body = urlencode({**fields, **extra}).encode()
    return resolve("POST", f"/approvals/{approval_id}", body=body, headers=headers)


# --- JSON API ------------------------------------------------------------------------------------


def test_list_shows_pending_approvals_of_the_callers_tenant_without_tokens(h: Harness) -> None:
    mine = h.service.request(pending(call_id="c1"))
    h.service.request(pending("task_" + "d" * 24, tenant="globex"))
    status, body = api("GET", "/approvals", claims=claims())
    assert status == 200
    assert [a["approval_id"] for a in body["approvals"]] == [mine.approval_id]
    assert "task_token" not in body["approvals"][0] and TOKEN not in json.dumps(body)


def test_approvers_need_the_scope_or_the_group(h: Harness) -> None:
    stored = h.service.request(pending())
    no_right = claims(scope="tasks query")
    assert api("GET", "/approvals", claims=no_right)[0] == 403
    decision = {"decision": "approve"}
    assert (
        api("POST", f"/approvals/{stored.approval_id}/decision", decision, claims=no_right)[0]
        == 403
    )
    in_group = claims(scope="tasks", groups="[staff approvers]")
    assert api("GET", "/approvals", claims=in_group)[0] == 200
    assert api("GET", "/approvals")[0] == 401  # no token at all


def test_decide_through_the_api_records_the_caller_and_refuses_a_second(h: Harness) -> None:
    stored = h.service.request(pending())
    path = f"/approvals/{stored.approval_id}/decision"
    status, body = api("POST", path, {"decision": "approve", "comment": "fine"}, claims=claims())
    assert status == 200
    assert body["approval"]["status"] == "approved"
    assert body["approval"]["decided_by"] == "erin@acme"
    assert body["approval"]["decision_channel"] == "api" and "task_token" not in body["approval"]
    assert [t for t, _ in h.sfn.succeeded] == [TOKEN]
    status, body = api("POST", path, {"decision": "deny"}, claims=claims())
    assert status == 409 and body["error"]["code"] == "approval_closed"
    assert "already approved by erin@acme" in body["error"]["message"]
    assert h.sfn.failed == []


def test_another_tenants_approval_is_not_found(h: Harness) -> None:
    stored = h.service.request(pending())
    path = f"/approvals/{stored.approval_id}/decision"
    status, body = api("POST", path, {"decision": "approve"}, claims=claims("globex"))
    assert status == 404 and h.sfn.succeeded == []


@pytest.mark.parametrize(
    "path,body",
    [
        ("/approvals/apv_" + "0" * 24 + "/decision", {"decision": "maybe"}),
        (
            "/approvals/apv_" + "0" * 24 + "/decision",
            {"decision": "approve", "comment": "x" * 2001},
        ),
        ("/approvals/not-an-id/decision", {"decision": "approve"}),
    ],
)
def test_bad_decisions_are_422(h: Harness, path: str, body: dict) -> None:
    assert api("POST", path, body, claims=claims())[0] == 422


def test_an_ended_task_is_409(h: Harness) -> None:
    stored = h.service.request(pending())
    h.sfn.execution_status = "SUCCEEDED"
    status, body = api(
        "POST",
        f"/approvals/{stored.approval_id}/decision",
        {"decision": "approve"},
        claims=claims(),
    )
    assert status == 409 and "already ended" in body["error"]["message"]


# --- the approval page ---------------------------------------------------------------------------


def test_the_page_shows_the_call_escaped_with_strict_headers_and_a_csrf_cookie(h: Harness) -> None:
    stored = h.service.request(pending(body=INJECTION))
    page = open_page(h, link_path(h, stored.approval_id))
    assert page["statusCode"] == 200
    headers = page["headers"]
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    html = page["body"]
    assert "<script>" not in html and "<img" not in html
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html and "&amp; &quot;quotes" in html
    )
    assert "carol@example.com" in html and "dana@acme" in html and stored.task_id in html
    assert TOKEN not in html
    fields, cookie = form_of(page)
    assert set(fields) == {"sig", "csrf"}
    [set_cookie] = page["cookies"]
    attributes = {a.strip().lower() for a in set_cookie.split(";")[1:]}
    assert {"path=/approvals/", "secure", "httponly", "samesite=strict"} <= attributes
    assert cookie.startswith("docket_csrf=")


def test_the_cookie_is_not_secure_on_local_http(h: Harness, monkeypatch) -> None:
    monkeypatch.setenv("DOCKET_APPROVAL_BASE_URL", "http://127.0.0.1:8787")
    reset_settings()
    stored = h.service.request(pending())
    page = open_page(h, link_path(h, stored.approval_id))
    assert "secure" not in page["cookies"][0].lower()


def test_approving_through_the_page(h: Harness) -> None:
    # Given the page opened from alice's link
    stored = h.service.request(pending())
    page = open_page(h, link_path(h, stored.approval_id))
    fields, cookie = form_of(page)
    # When she approves with a comment
    done = submit(stored.approval_id, fields, cookie, decision="approve", comment="  go ahead ")
    # Then the task got its success once, the record says who and how
    assert done["statusCode"] == 200 and "Approved" in done["body"]
    assert [out["decided_by"] for _, out in h.sfn.succeeded] == ["alice@acme.example"]
    record = h.service.get(stored.approval_id)
    assert record is not None and record.status == "approved"
    assert record.decision_channel == "email" and record.comment == "go ahead"
    # and the link now shows who decided, and a second submission is 409
    again = open_page(h, link_path(h, stored.approval_id), cookie)
    assert again["statusCode"] == 409
    assert "already approved by alice@acme.example" in again["body"]
    second = submit(stored.approval_id, fields, cookie, decision="deny")
    assert second["statusCode"] == 409 and len(h.sfn.succeeded) == 1 and h.sfn.failed == []


def test_denying_through_the_page(h: Harness) -> None:
    stored = h.service.request(pending())
    fields, cookie = form_of(open_page(h, link_path(h, stored.approval_id)))
    done = submit(stored.approval_id, fields, cookie, decision="deny")
    assert done["statusCode"] == 200 and "Denied" in done["body"]
    assert len(h.sfn.failed) == 1 and h.sfn.succeeded == []


@pytest.mark.parametrize(
    "case",
    [
        "no-cookie",
        "other-cookie",
        "no-field",
        "wrong-field",
        "cross-origin",
        "null-origin",
        "null-origin-cross-site",
        "cross-site-fetch",
    ],
)
def test_a_form_without_valid_csrf_proof_is_refused(h: Harness, case: str) -> None:
    stored = h.service.request(pending())
    fields, cookie = form_of(open_page(h, link_path(h, stored.approval_id)))
    origin: str | None = BASE
    fetch_site: str | None = None
    if case == "no-cookie":
        cookie = ""
    elif case == "other-cookie":
        cookie = "docket_csrf=" + "A" * 43
    elif case == "no-field":
        del fields["csrf"]
    elif case == "wrong-field":
        fields["csrf"] = "0" * 64
    elif case == "cross-origin":
        origin = "https://evil.example.com"
    elif case == "null-origin":  # null, and nothing says it came from our page
        origin = "null"
    elif case == "null-origin-cross-site":
        origin, fetch_site = "null", "cross-site"
    else:
        fetch_site = "same-site"
    out = submit(
        stored.approval_id, fields, cookie, origin=origin, fetch_site=fetch_site, decision="approve"
    )
    assert out["statusCode"] == 403 and "could not be verified" in out["body"]
    assert h.sfn.succeeded == []


def test_a_null_origin_from_our_own_page_is_accepted(h: Harness) -> None:
    # Given the page's referrer policy is no-referrer, a browser sends Origin: null with the form,
    # and Fetch Metadata says same-origin
    stored = h.service.request(pending())
    fields, cookie = form_of(open_page(h, link_path(h, stored.approval_id)))
    out = submit(
        stored.approval_id, fields, cookie, origin="null", fetch_site="same-origin",
        decision="approve",
    )  # fmt: skip
    assert out["statusCode"] == 200 and len(h.sfn.succeeded) == 1


def test_a_csrf_token_is_bound_to_its_approval(h: Harness) -> None:
    first = h.service.request(pending(call_id="c1"))
    second = h.service.request(pending(call_id="c2"))
    fields, cookie = form_of(open_page(h, link_path(h, first.approval_id)))
    other_sig = link_path(h, second.approval_id).split("sig=")[1]
    out = submit(second.approval_id, {**fields, "sig": other_sig}, cookie, decision="approve")
    assert out["statusCode"] == 403 and h.sfn.succeeded == []


def test_a_forged_link_gets_the_invalid_link_page(h: Harness) -> None:
    stored = h.service.request(pending())
    good = link_path(h, stored.approval_id)
    for path in (good[:-3] + "AAA", good.split("?")[0], good.split("?")[0] + "?sig=x.1.y"):
        page = open_page(h, path)
        assert page["statusCode"] == 403
        assert "This link is not valid or has expired" in page["body"]
        assert "carol@example.com" not in page["body"]
    fields, cookie = form_of(open_page(h, good))
    out = submit(stored.approval_id, {**fields, "sig": fields["sig"][:-2] + "zz"}, cookie)
    assert out["statusCode"] == 403 and h.sfn.succeeded == []


def test_unknown_and_malformed_ids_get_the_not_found_page(h: Harness) -> None:
    unknown = "apv_" + "9" * 24
    page = open_page(h, link_path(h, unknown))  # a valid signature, but nothing stored
    assert page["statusCode"] == 404 and "no such approval" in page["body"]
    assert open_page(h, "/approvals/apv_nothex?sig=x")["statusCode"] == 404


def test_an_expired_approval_gets_the_closed_page(h: Harness) -> None:
    stored = h.service.request(pending())
    h.sfn.execution_status = "TIMED_OUT"
    page = open_page(h, link_path(h, stored.approval_id))
    assert page["statusCode"] == 409 and "already ended" in page["body"]
    assert page["headers"]["Content-Security-Policy"].startswith("default-src 'none'")


# --- Slack ---------------------------------------------------------------------------------------


def slack_event(payload: dict[str, Any], *, secret: str = SLACK_SECRET, b64: bool = False) -> dict:
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={mac}",
    }
    event = build_event("POST", "/slack/interactions", headers, body.encode(), None)
    if b64:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body.encode()).decode(), True
    return event


def click(approval_id: str, action: str = "approve") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "U123", "username": "alice", "name": "alice"},
        "actions": [{"action_id": action, "value": approval_id, "type": "button"}],
        "response_url": "https://hooks.slack.com/actions/T/1/x",
    }


@pytest.mark.parametrize("b64", [False, True])
def test_a_slack_click_decides(h: Harness, b64: bool) -> None:
    stored = h.service.request(pending())
    out = app.resolve(slack_event(click(stored.approval_id), b64=b64), CONTEXT)
    assert out["statusCode"] == 200
    body = json.loads(out["body"])
    assert body["response_type"] == "in_channel" and body["replace_original"] is True
    assert "Approved" in body["text"]
    record = h.service.get(stored.approval_id)
    assert record is not None and record.status == "approved"
    assert record.decided_by == "slack:U123 (alice)" and record.decision_channel == "slack"
    # a second click says it is already decided, and sends nothing
    again = json.loads(app.resolve(slack_event(click(stored.approval_id, "deny")), CONTEXT)["body"])
    assert "already approved" in again["text"] and h.sfn.failed == []


def test_a_forged_slack_request_is_401(h: Harness) -> None:
    stored = h.service.request(pending())
    out = app.resolve(slack_event(click(stored.approval_id), secret="guessed"), CONTEXT)
    assert out["statusCode"] == 401 and h.sfn.succeeded == []


def test_an_unknown_slack_action_is_400(h: Harness) -> None:
    stored = h.service.request(pending())
    payload = click(stored.approval_id)
    payload["actions"][0]["action_id"] = "escalate"
    assert app.resolve(slack_event(payload), CONTEXT)["statusCode"] == 400
    assert h.sfn.succeeded == []
