"""The agent end to end on the local cloud, through HTTP: the offline planner, the real tools, the
real approvals (e-mailed links, the JSON decision API), moto's SES and the outbox directory."""

from __future__ import annotations

import email
import time
from collections.abc import Iterator
from typing import Any

import pytest

from docket.local.cloud import REPO_ROOT, LocalCloud
from tests.integration.conftest import Api, start_cloud

pytestmark = pytest.mark.integration

CONTRACTS = REPO_ROOT / "docs" / "samples" / "contracts"
TASK = (
    "Compare the termination clauses in the Acme, Globex and Initech contracts in a table "
    "and e-mail it to legal@example.com"
)
APPROVER = "approver@acme.example"
STAFF = ("staff",)


@pytest.fixture(scope="module")
def agent_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Api]]:
    data = tmp_path_factory.mktemp("agent-e2e")
    cloud, gateway = start_cloud(data, env={"DOCKET_APPROVAL_EMAILS": "boss@example.com"})
    api = Api(gateway.url)
    try:
        ids = [
            api.upload(p.name, p.read_bytes(), acl=["staff"]) for p in sorted(CONTRACTS.iterdir())
        ]
        for document_id in ids:
            assert api.wait_status(document_id)["status"] == "indexed"
        yield cloud, api
    finally:
        gateway.stop()
        cloud.stop()


def wait_task(api: Api, task_id: str, until: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api.call("GET", f"/tasks/{task_id}", groups=STAFF).json()
        if body["task"]["status"] in until:
            return body  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise TimeoutError(f"{task_id}: {body['task']['status']}")


def outbox(cloud: LocalCloud) -> list[email.message.Message]:
    files = sorted((cloud.data_dir / "outbox").glob("*.eml"))
    return [email.message_from_bytes(p.read_bytes()) for p in files]


def ses_sent_to(cloud: LocalCloud, address: str) -> list[Any]:
    from moto.ses.models import ses_backends

    backend = ses_backends["123456789012"][cloud.region]
    return [m for m in backend.sent_messages if address in getattr(m, "destinations", [])]


def to_legal(messages: list[email.message.Message]) -> list[email.message.Message]:
    return [m for m in messages if "legal@example.com" in (m["To"] or "")]


def body_text(message: email.message.Message) -> str:
    part = message.get_body(("plain",)) if hasattr(message, "get_body") else None  # type: ignore[attr-defined]
    if part is None:
        for p in message.walk():
            if p.get_content_type() == "text/plain":
                part = p
                break
    payload = (part or message).get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else str(payload)


def start(api: Api, prompt: str) -> str:
    resp = api.call("POST", "/tasks", groups=STAFF, json={"prompt": prompt})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task"]["task_id"])


def test_compare_contracts_and_email_after_approval(agent_cloud: tuple[LocalCloud, Api]) -> None:
    cloud, api = agent_cloud
    task_id = start(api, TASK)
    body = wait_task(api, task_id, {"waiting_approval"})
    assert to_legal(outbox(cloud)) == []  # nothing is sent before a person approves

    pending = api.call("GET", "/approvals", groups=STAFF).json()["approvals"]
    [approval] = [a for a in pending if a["task_id"] == task_id]
    assert approval["tool"] == "send_email"
    assert approval["arguments"]["to"] == ["legal@example.com"]
    assert "task_token" not in approval
    # the approver got an e-mail with a signed link, and no task token anywhere in it
    [notice] = [m for m in outbox(cloud) if "boss@example.com" in (m["To"] or "")]
    assert f"/approvals/{approval['approval_id']}?sig=" in body_text(notice)

    # four eyes: the task's requester cannot approve the e-mail it asked for
    own = api.call(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        groups=STAFF,
        json={"decision": "approve"},
    )
    assert own.status_code == 403 and "four eyes" in own.text
    resp = api.call(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        groups=STAFF,
        subject=APPROVER,
        json={"decision": "approve", "comment": "checked"},
    )
    assert resp.status_code == 200, resp.text
    body = wait_task(api, task_id, {"succeeded", "failed", "step_limit"})
    assert body["task"]["status"] == "succeeded", body["task"]

    [sent] = to_legal(outbox(cloud))
    text = body_text(sent)
    for company in ("Acme", "Globex", "Initech"):
        assert company in text
    assert "ninety days" in text or "sixty days" in text
    again = api.call(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        groups=STAFF,
        subject=APPROVER,
        json={"decision": "approve"},
    )
    assert again.status_code == 409
    tools = [s["tool"] for s in body["timeline"] if s["kind"] == "tool"]
    assert tools.count("search_documents") == 3 and "make_table" in tools
    assert tools[-1] == "send_email"
    [entry] = [s for s in body["timeline"] if s["kind"] == "approval"]
    assert entry["status"] == "approved" and entry["detail"].endswith(": checked")
    decided = [a for a in body["approvals"] if a["approval_id"] == approval["approval_id"]]
    assert decided[0]["status"] == "approved" and decided[0]["comment"] == "checked"


def test_denied_email_is_never_sent(agent_cloud: tuple[LocalCloud, Api]) -> None:
    cloud, api = agent_cloud
    before = len(outbox(cloud))
    task_id = start(api, TASK.replace("legal@example.com", "audit@example.com"))
    wait_task(api, task_id, {"waiting_approval"})
    [approval] = [
        a
        for a in api.call("GET", "/approvals", groups=STAFF).json()["approvals"]
        if a["task_id"] == task_id
    ]
    resp = api.call(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        groups=STAFF,
        json={"decision": "deny", "comment": "not now"},
    )
    assert resp.status_code == 200, resp.text
    body = wait_task(api, task_id, {"succeeded", "failed"})
    assert body["task"]["status"] == "succeeded"
    assert "not sent" in body["task"]["answer"]
    new = outbox(cloud)[before:]
    assert not [m for m in new if "audit@example.com" in (m["To"] or "")]


def test_other_tenants_cannot_see_or_decide(agent_cloud: tuple[LocalCloud, Api]) -> None:
    _, api = agent_cloud
    task_id = start(api, TASK.replace("legal@example.com", "other@example.com"))
    wait_task(api, task_id, {"waiting_approval"})
    assert api.call("GET", f"/tasks/{task_id}", tenant="globex").status_code == 404
    assert api.call("GET", "/approvals", tenant="globex").json()["approvals"] == []
    [approval] = [
        a
        for a in api.call("GET", "/approvals", groups=STAFF).json()["approvals"]
        if a["task_id"] == task_id
    ]
    resp = api.call(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        tenant="globex",
        json={"decision": "approve"},
    )
    assert resp.status_code == 404
    stopped = api.call("DELETE", f"/tasks/{task_id}", groups=STAFF)
    assert stopped.status_code == 202 and stopped.json()["task"]["status"] == "stopped"
    # an approval for an execution that already ended
    late = api.call(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        groups=STAFF,
        subject=APPROVER,
        json={"decision": "approve"},
    )
    assert late.status_code == 409


def test_crash_after_the_email_is_sent_does_not_send_it_twice(
    agent_cloud: tuple[LocalCloud, Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The side effect succeeds, then RunTool crashes before the result is recorded; the state
    machine retries RunTool, and the outbox replays the recorded effect instead of sending again."""
    from docket.agent.service import AgentService
    from docket.errors import StoreUnavailable

    cloud, api = agent_cloud
    original = AgentService._tool_result
    crashes: list[str] = []

    def crash_once(
        self: AgentService, task_id: str, step: int, n: int, call: Any, *a: Any, **kw: Any
    ) -> None:
        if call.name == "send_email" and not crashes:
            crashes.append(call.id)
            raise StoreUnavailable("the process died before recording the result")
        original(self, task_id, step, n, call, *a, **kw)

    monkeypatch.setattr(AgentService, "_tool_result", crash_once)
    task_id = start(api, TASK.replace("legal@example.com", "once@example.com"))
    wait_task(api, task_id, {"waiting_approval"})
    [approval] = [
        a
        for a in api.call("GET", "/approvals", groups=STAFF).json()["approvals"]
        if a["task_id"] == task_id
    ]
    api.call(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        groups=STAFF,
        subject=APPROVER,
        json={"decision": "approve"},
    )
    body = wait_task(api, task_id, {"succeeded", "failed"}, timeout=120)
    assert crashes, "the crash was not injected"
    assert body["task"]["status"] == "succeeded", body["task"]
    sent = [m for m in outbox(cloud) if "once@example.com" in (m["To"] or "")]
    assert len(sent) == 1
    assert len(ses_sent_to(cloud, "once@example.com")) == 1  # moto's SES record agrees
    [email_step] = [
        s for s in body["timeline"] if s["tool"] == "send_email" and s["kind"] == "tool"
    ]
    assert email_step["status"] == "ok" and "replayed" in (email_step["result"] or "").lower()


def test_a_task_stopped_right_after_it_starts_stays_stopped(
    agent_cloud: tuple[LocalCloud, Api],
) -> None:
    cloud, api = agent_cloud
    before = len(to_legal(outbox(cloud)))
    # When a task is stopped the moment it is created (its execution barely started)
    for _ in range(3):
        task_id = start(api, TASK)
        stopped = api.call("DELETE", f"/tasks/{task_id}", groups=STAFF)
        # Then the stop is accepted, not a 503, and it holds: no step runs afterwards
        assert stopped.status_code == 202, stopped.text
        assert stopped.json()["task"]["status"] == "stopped"
        cloud.wait_idle(60)
        body = api.call("GET", f"/tasks/{task_id}", groups=STAFF).json()
        assert body["task"]["status"] == "stopped"
        pending = api.call("GET", "/approvals", groups=STAFF).json()["approvals"]
        assert all(a["task_id"] != task_id for a in pending if a["status"] == "pending")
    assert len(to_legal(outbox(cloud))) == before
