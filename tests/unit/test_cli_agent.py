"""The agent commands of the CLI (task, tasks show, approvals) against a stub API: the requests they
make, what they print, and their exit codes."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from docket import cli
from docket.agent.models import TERMINAL_STATUSES

TASK_ID = "task_" + "a" * 24
APV_ID = "apv_" + "b" * 24
URL = ["--url", "http://api.test", "--tenant", "acme"]


def task(status: str, **fields: Any) -> dict[str, Any]:
    return {"task_id": TASK_ID, "tenant": "acme", "status": status, "prompt": "p", **fields}


def approval(approval_id: str = APV_ID, **fields: Any) -> dict[str, Any]:
    return {
        "approval_id": approval_id,
        "task_id": TASK_ID,
        "tool": "send_email",
        "status": "pending",
        "summary": [
            ["to", '["legal@example.com"]'],
            ["subject", "Comparison: termination clauses (Acme, Globex, Initech)"],
            ["body", "Hello,\n\n| Document | What it says | Source |"],
        ],
        **fields,
    }


class StubApi:
    """Answers each (method, path) from a list of (status, body), the last one repeating."""

    def __init__(self, routes: dict[tuple[str, str], list[tuple[int, Any]]]) -> None:
        self.routes = {("POST", "/_local/token"): [(200, {"token": "dev-token"})], **routes}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get((request.method, request.url.path))
        if not answers:
            return httpx.Response(404, json={"error": {"message": "no such route"}})
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        return httpx.Response(status, json=body)

    def made(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests if r.url.path != "/_local/token"]

    def body(self, method: str, path: str) -> Any:
        (request,) = [r for r in self.requests if (r.method, r.url.path) == (method, path)]
        return json.loads(request.content)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Callable[..., StubApi]:
    def install(routes: dict[tuple[str, str], list[tuple[int, Any]]]) -> StubApi:
        stub = StubApi(routes)
        monkeypatch.setattr(
            cli, "Client", functools.partial(cli.Client, transport=httpx.MockTransport(stub))
        )
        monkeypatch.setattr(cli, "TASK_POLL_SECONDS", 0)
        return stub

    return install


def test_cli_knows_the_task_terminal_statuses() -> None:
    assert frozenset(cli.TASK_TERMINAL) == TERMINAL_STATUSES


def test_task_starts_and_prints_the_id_first(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    stub = api({("POST", "/tasks"): [(202, {"task": task("running")})]})
    # When
    rc = cli.main(["task", "Summarise the refund policy", "--max-steps", "5", *URL])
    # Then
    assert rc == 0
    assert stub.made() == [("POST", "/tasks")]
    assert stub.body("POST", "/tasks") == {"prompt": "Summarise the refund policy", "max_steps": 5}
    assert stub.requests[-1].headers["authorization"] == "Bearer dev-token"
    assert capsys.readouterr().out.splitlines() == [TASK_ID, "status: running"]


def test_task_wait_prints_the_answer_when_it_succeeds(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    stub = api(
        {
            ("POST", "/tasks"): [(202, {"task": task("running")})],
            ("GET", f"/tasks/{TASK_ID}"): [
                (200, {"task": task("running"), "timeline": [], "approvals": []}),
                (200, {"task": task("succeeded", answer="Refunds take 14 days.")}),
            ],
        }
    )
    rc = cli.main(["task", "Summarise the refund policy", "--wait", *URL])
    assert rc == 0
    assert stub.made() == [("POST", "/tasks")] + [("GET", f"/tasks/{TASK_ID}")] * 2
    assert "max_steps" not in stub.body("POST", "/tasks")
    assert capsys.readouterr().out.splitlines() == [
        TASK_ID,
        "status: running",
        "status: succeeded",
        "Refunds take 14 days.",
    ]


def test_task_wait_stops_at_an_approval_and_says_how_to_approve(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    api(
        {
            ("POST", "/tasks"): [(202, {"task": task("running")})],
            ("GET", f"/tasks/{TASK_ID}"): [
                (
                    200,
                    {
                        "task": task("waiting_approval"),
                        "approvals": [approval(), approval("apv_old", status="approved")],
                    },
                )
            ],
        }
    )
    rc = cli.main(["task", "Compare and e-mail legal@example.com", "--wait", *URL])
    out = capsys.readouterr().out
    assert rc == 0
    assert "status: waiting_approval" in out
    assert f"  {APV_ID}  send_email" in out
    assert "      to: legal@example.com" in out
    assert f"docket approvals approve {APV_ID}" in out
    assert "apv_old" not in out  # decided approvals are not offered


@pytest.mark.parametrize(
    ("status", "rc"), [("failed", 1), ("step_limit", 1), ("budget_exceeded", 1), ("stopped", 1)]
)
def test_task_wait_exits_1_when_the_task_did_not_succeed(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str], status: str, rc: int
) -> None:
    api(
        {
            ("POST", "/tasks"): [(202, {"task": task("running")})],
            ("GET", f"/tasks/{TASK_ID}"): [(200, {"task": task(status, error="out of steps")})],
        }
    )
    assert cli.main(["task", "x", "--wait", *URL]) == rc
    out = capsys.readouterr().out
    assert f"status: {status}" in out and "error: out of steps" in out


def test_task_wait_times_out(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    api(
        {
            ("POST", "/tasks"): [(202, {"task": task("running")})],
            ("GET", f"/tasks/{TASK_ID}"): [(200, {"task": task("running")})],
        }
    )
    assert cli.main(["task", "x", "--wait", "--timeout", "0", *URL]) == 2
    assert f"{TASK_ID} still running after 0s" in capsys.readouterr().err


def test_task_json_prints_the_body(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    api({("POST", "/tasks"): [(202, {"task": task("running")})]})
    assert cli.main(["task", "x", "--json", *URL]) == 0
    assert json.loads(capsys.readouterr().out) == {"task": task("running")}


def test_tasks_show_prints_the_timeline_one_line_per_step(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    timeline = [
        {
            "seq": 0,
            "n": 0,
            "kind": "model",
            "status": "ok",
            "model": "offline-planner",
            "latency_ms": 12.4,
            "input_tokens": 983,
            "output_tokens": 34,
            "tool_calls": [{"name": "search_documents"}, {"name": "search_documents"}],
        },
        {
            "seq": 0,
            "n": 1,
            "kind": "tool",
            "status": "ok",
            "tool": "search_documents",
            "latency_ms": 40,
            "result": '[{"document_id": "doc_1",\n "text": "Acme may terminate on 30 days notice"}]',
        },
        {"seq": 2, "n": 0, "kind": "finish", "status": "ok", "latency_ms": 0},
    ]
    stub = api(
        {
            ("GET", f"/tasks/{TASK_ID}"): [
                (
                    200,
                    {
                        "task": task(
                            "succeeded",
                            steps=3,
                            input_tokens=2000,
                            output_tokens=300,
                            answer="Done.",
                        ),
                        "timeline": timeline,
                        "approvals": [],
                    },
                )
            ]
        }
    )
    assert cli.main(["tasks", "show", TASK_ID, *URL]) == 0
    assert stub.made() == [("GET", f"/tasks/{TASK_ID}")]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{TASK_ID}  succeeded  steps 3  tokens 2000 in / 300 out"
    assert lines[1].split()[:8] == [
        "0",
        "model",
        "offline-planner",
        "ok",
        "12",
        "ms",
        "983/34",
        "tok",
    ]
    assert lines[1].endswith("calls search_documents, search_documents")
    assert lines[2].split()[:6] == ["0", "tool", "search_documents", "ok", "40", "ms"]
    assert '[{"document_id": "doc_1", "text": "Acme may terminate' in lines[2]  # one line
    assert lines[3].split()[:3] == ["2", "finish", "-"]
    assert lines[4:] == ["Done."]


def test_approvals_list_prints_one_line_per_approval_id_first(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    second = approval(
        "apv_" + "c" * 24,
        tool="post_slack_message",
        summary=[["channel", "#legal"], ["text", "hello\nthere"]],
    )
    stub = api({("GET", "/approvals"): [(200, {"approvals": [approval(), second]})]})
    assert cli.main(["approvals", "list", *URL]) == 0
    assert stub.made() == [("GET", "/approvals")]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[0] == APV_ID  # the id first: `cut -d' ' -f1` feeds approve
    assert lines[0].startswith(
        f"{APV_ID}  {TASK_ID}  send_email  to=legal@example.com "
        "subject=Comparison: termination clauses (Acme, Globex, Initech) body=Hello, |"
    )
    assert (
        lines[1]
        == f"{'apv_' + 'c' * 24}  {TASK_ID}  post_slack_message  channel=#legal text=hello there"
    )


def test_approvals_list_empty_says_so_on_stderr(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    api({("GET", "/approvals"): [(200, {"approvals": []})]})
    assert cli.main(["approvals", "list", *URL]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "no pending approvals"


@pytest.mark.parametrize(("command", "decision"), [("approve", "approved"), ("deny", "denied")])
def test_approvals_decide_posts_the_decision(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str], command: str, decision: str
) -> None:
    path = f"/approvals/{APV_ID}/decision"
    stub = api({("POST", path): [(200, {"approval": approval(status=decision)})]})
    assert cli.main(["approvals", command, APV_ID, "--comment", "ok by me", *URL]) == 0
    assert stub.body("POST", path) == {"decision": command, "comment": "ok by me"}
    assert capsys.readouterr().out.strip() == f"{APV_ID}  {decision}  task {TASK_ID}  send_email"


def test_approvals_decide_without_comment_sends_none(api: Callable[..., StubApi]) -> None:
    path = f"/approvals/{APV_ID}/decision"
    stub = api({("POST", path): [(200, {"approval": approval(status="approved")})]})
    assert cli.main(["approvals", "approve", APV_ID, *URL]) == 0
    assert stub.body("POST", path) == {"decision": "approve"}


def test_approvals_decide_409_is_a_clear_message_and_exit_1(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    api(
        {
            ("POST", f"/approvals/{APV_ID}/decision"): [
                (409, {"error": {"code": "ApprovalClosed", "message": "already approved"}})
            ]
        }
    )
    assert cli.main(["approvals", "deny", APV_ID, *URL]) == 1
    err = capsys.readouterr().err
    assert f"cannot deny {APV_ID}: it is no longer pending" in err
    assert "HTTP 409: already approved" in err


def test_approvals_decide_403_names_the_missing_scope(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    api({("POST", f"/approvals/{APV_ID}/decision"): [(403, {"message": "missing scope"})]})
    assert cli.main(["approvals", "approve", APV_ID, "--token", "t", *URL]) == 2
    err = capsys.readouterr().err
    assert "HTTP 403: missing scope" in err and "scope approvals" in err


def test_tasks_stop_deletes_the_task_and_prints_its_status(
    api: Callable[..., StubApi], capsys: pytest.CaptureFixture[str]
) -> None:
    stub = api({("DELETE", f"/tasks/{TASK_ID}"): [(202, {"task": task("stopped")})]})
    assert cli.main(["tasks", "stop", TASK_ID, *URL]) == 0
    assert stub.made() == [("DELETE", f"/tasks/{TASK_ID}")]
    assert capsys.readouterr().out.strip() == f"{TASK_ID}  stopped"
