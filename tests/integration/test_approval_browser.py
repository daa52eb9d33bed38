"""The e-mailed approval link in a real headless Chromium, against the local cloud's gateway.

The link comes from the ``.eml`` the local cloud's outbox wrote; the page must show the call's
values exactly (markup in a model-written body shows as text), take a decision once, and refuse
forged links and forms without the CSRF cookie and field. Step Functions is faked in-process
(the gateway runs the api function in this process), so the test sees the SendTask calls.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from docket.agent import workflow
from docket.agent.approvals import ApprovalService
from docket.agent.models import ApprovalRecord
from docket.config import get_settings
from docket.local.cloud import LocalCloud
from docket.local.gateway import Gateway
from docket.models import utcnow
from tests.integration.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APPROVER = "alice@acme.example"
BODY = (
    "Hi Carol,\n\nthe Q3 figures: <b>up 4%</b>.\n"
    '</pre><script>document.title="pwned"</script><img src=x onerror="alert(1)">\n'
    '  indented & "quoted" line\n'
)
SUBJECT = "Q3 <figures> & notes"


@dataclass
class SentTasks:
    succeeded: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cloud = LocalCloud(
        tmp_path_factory.mktemp("approvals"),
        env={
            "DOCKET_APPROVAL_BASE_URL": base,
            "DOCKET_APPROVAL_EMAILS": APPROVER,
            "DOCKET_APPROVAL_SLACK_CHANNEL": "#approvals",
        },
        persist=False,
    ).start(pollers=False)
    gateway = Gateway(cloud, port=port).start()
    try:
        yield cloud, base
    finally:
        gateway.stop()
        cloud.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (make installs it with apt-get where it may)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield playwright, chromium
        finally:
            chromium.close()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    """Step Functions, faked: the execution is running, and each SendTask call is recorded."""
    calls = SentTasks()
    monkeypatch.setattr(workflow.StepFunctions, "status", lambda self, arn: "RUNNING")
    monkeypatch.setattr(
        workflow.StepFunctions,
        "succeed",
        lambda self, token, output: calls.succeeded.append((token, output)),
    )
    monkeypatch.setattr(
        workflow.StepFunctions,
        "fail",
        lambda self, token, *, error, cause: calls.failed.append((token, error, cause)),
    )
    return calls


def request_approval(call_id: str) -> ApprovalRecord:
    now = utcnow()
    return ApprovalService.from_settings(get_settings()).request(
        ApprovalRecord(
            task_id="task_" + "e" * 24,
            tenant="acme",
            execution_arn="arn:aws:states:us-east-1:123456789012:execution:docket-agent-loop:x",
            step=1,
            call_id=call_id,
            tool="send_email",
            arguments={"to": ["carol@example.com"], "subject": SUBJECT, "body": BODY},
            summary=[("To", "carol@example.com"), ("Subject", SUBJECT), ("Body", BODY)],
            requester="dana@acme",
            task_token=f"secret-task-token-{call_id}",
            created_at=now,
            expires_at=now + timedelta(days=1),
        )
    )


def emailed_link(approval_id: str) -> str:
    """The link in the e-mail the outbox kept for this approval."""
    outbox = get_settings().email_outbox_dir
    assert outbox is not None
    for eml in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found = re.search(rf"https?://\S+/approvals/{approval_id}\?sig=\S+", text)
        if found:
            assert message["To"] == APPROVER
            return found.group(0)
    raise AssertionError(f"no e-mail with a link to {approval_id} in {outbox}")


def test_approve_in_the_browser_once(
    site: tuple[LocalCloud, str], browser: tuple[Any, Any], sent: SentTasks
) -> None:
    _, base = site
    playwright, chromium = browser
    # Given a pending approval, e-mailed to alice
    approval = request_approval("call_approve")
    link = emailed_link(approval.approval_id)
    assert link.startswith(f"{base}/approvals/{approval.approval_id}?sig=")
    assert "secret-task-token" not in link
    context = chromium.new_context()
    page = context.new_page()
    try:
        # When she opens the link
        response = page.goto(link)
        assert response is not None and response.status == 200
        assert "default-src 'none'" in response.headers["content-security-policy"]
        # Then the page shows exactly what will be sent; the markup in the body is just text
        assert page.locator('pre[data-label="To"]').inner_text() == "carol@example.com"
        assert page.locator('pre[data-label="Subject"]').inner_text() == SUBJECT
        assert page.locator('pre[data-label="Body"]').inner_text() == BODY
        assert page.locator("script, img, b").count() == 0
        assert page.title() == "Approve send_email?"
        assert "secret-task-token" not in page.content()
        [cookie] = [c for c in context.cookies() if c["name"] == "docket_csrf"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        fields = {
            name: page.locator(f'input[name="{name}"]').get_attribute("value") or ""
            for name in ("sig", "csrf")
        }
        # When she approves with a comment
        page.fill("textarea[name=comment]", "Fine, <send> it")
        with page.expect_navigation():
            page.click('button[value="approve"]')
        # Then she sees it approved, and the task got exactly one success, with who and why
        assert page.locator("h1").inner_text() == "Approved"
        assert f"You approved this request as {APPROVER}" in page.locator("main").inner_text()
        assert sent.succeeded == [
            (
                "secret-task-token-call_approve",
                {
                    "approved": True,
                    "approval_id": approval.approval_id,
                    "decided_by": APPROVER,
                    "comment": "Fine, <send> it",
                },
            )
        ]
        # When she opens the link again, then it says it is already approved
        again = page.goto(link)
        assert again is not None and again.status == 409
        assert f"already approved by {APPROVER}" in page.locator("main").inner_text()
        # and submitting the form a second time is refused, with nothing sent
        replay = context.request.post(
            f"{base}/approvals/{approval.approval_id}",
            form={**fields, "decision": "deny"},
            headers={"origin": base},
        )
        assert replay.status == 409
        assert len(sent.succeeded) == 1 and sent.failed == []
    finally:
        context.close()


def test_a_tampered_link_shows_the_invalid_link_page(
    site: tuple[LocalCloud, str], browser: tuple[Any, Any], sent: SentTasks
) -> None:
    _, chromium = browser
    approval = request_approval("call_tampered")
    link = emailed_link(approval.approval_id)
    tampered = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    context = chromium.new_context()
    page = context.new_page()
    try:
        response = page.goto(tampered)
        assert response is not None and response.status == 403
        assert "This link is not valid or has expired" in page.locator("main").inner_text()
        assert "carol@example.com" not in page.content()
    finally:
        context.close()
    assert sent.succeeded == [] and sent.failed == []


def test_a_form_without_the_csrf_cookie_or_field_is_refused(
    site: tuple[LocalCloud, str], browser: tuple[Any, Any], sent: SentTasks
) -> None:
    _, base = site
    playwright, chromium = browser
    approval = request_approval("call_csrf")
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(emailed_link(approval.approval_id))
        fields = {
            name: page.locator(f'input[name="{name}"]').get_attribute("value") or ""
            for name in ("sig", "csrf")
        }
        url = f"{base}/approvals/{approval.approval_id}"
        # Given the page's fields, but another browser's (cookie-less) request
        stranger = playwright.request.new_context()
        try:
            no_cookie = stranger.post(url, form={**fields, "decision": "approve"})
            assert no_cookie.status == 403 and "could not be verified" in no_cookie.text()
        finally:
            stranger.dispose()
        # Given the cookie, but no CSRF field
        no_field = context.request.post(
            url, form={"sig": fields["sig"], "decision": "approve"}, headers={"origin": base}
        )
        assert no_field.status == 403
        # Given both, from another origin
        cross = context.request.post(
            url, form={**fields, "decision": "approve"}, headers={"origin": "https://evil.example"}
        )
        assert cross.status == 403
        assert sent.succeeded == [] and sent.failed == []
        # and the real form still works: Deny
        with page.expect_navigation():
            page.click('button[value="deny"]')
        assert page.locator("h1").inner_text() == "Denied"
        assert [(error, approval.approval_id in cause) for _, error, cause in sent.failed] == [
            (workflow.DENIED_ERROR, True)
        ]
    finally:
        context.close()


def test_the_gateway_lets_only_the_self_authenticated_routes_through(
    site: tuple[LocalCloud, str],
) -> None:
    _, base = site
    approval = "/approvals/apv_" + "0" * 24
    with httpx.Client(base_url=base) as http:
        # no bearer token: the gateway refuses the JWT routes itself
        assert http.get("/approvals").json() == {"message": "Unauthorized"}
        assert http.post(approval + "/decision", json={"decision": "approve"}).status_code == 401
        assert http.delete(approval).json() == {"message": "Unauthorized"}
        # the link page and Slack's callback reach the function, which checks them
        page = http.get(approval + "?sig=forged.1.x")
        assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
        slack = http.post("/slack/interactions", content=b"payload=%7B%7D")
        assert slack.status_code == 401 and slack.json()["error"]["code"] == "invalid_signature"
