"""The agent state machine (state_machines/agent_loop.asl.json) run by moto's Step Functions with
the Lambdas in-process: real task tokens, real retries and catches, a scripted model."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from docket.agent import factory
from docket.agent.models import TERMINAL_STATUSES, TaskRecord
from docket.agent.service import AgentService
from docket.errors import ApprovalClosed, ProviderError
from docket.local.cloud import LocalCloud
from docket.models import Principal
from docket.providers.fake import ScriptedChatModel, ToolUse
from docket.providers.llm import ChatRequest, ToolCall
from tests.integration.agent_doubles import EchoTool, MemoryApprovals, SendTool, build_service

pytestmark = pytest.mark.integration

OWNER = Principal(subject="ana", tenant="acme", groups=frozenset({"staff"}), scopes=frozenset())


@pytest.fixture(scope="module")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    cloud = LocalCloud(
        tmp_path_factory.mktemp("agent"),
        env={"DOCKET_AGENT_TOKEN_BUDGETS": json.dumps({"frugal": 300})},
        persist=False,
    ).start(pollers=False)
    try:
        yield cloud
    finally:
        factory.use_service(None)
        cloud.stop()


def use(model: Any, *tools: Any, **settings: Any) -> tuple[AgentService, MemoryApprovals]:
    service, approvals = build_service(model, list(tools), **settings)
    factory.use_service(service)
    return service, approvals


def wait(
    service: AgentService, task_id: str, until: set[str] | None = None, timeout: float = 60
) -> TaskRecord:
    until = until or set(TERMINAL_STATUSES)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = service.store.get(task_id)
        if task.status in until:
            return task
        time.sleep(0.05)
    raise TimeoutError(f"{task_id} is still {service.store.get(task_id).status}")


def wait_pending(approvals: MemoryApprovals, task_id: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = approvals.pending(task_id)
        if pending:
            return pending[0]
        time.sleep(0.05)
    raise TimeoutError("no approval was requested")


def call(name: str, args: dict[str, Any] | str, call_id: str = "c1") -> ToolCall:
    return ToolCall(
        id=call_id, name=name, arguments=args if isinstance(args, str) else json.dumps(args)
    )


def tool_results(request: ChatRequest) -> list[tuple[str, bool]]:
    return [(m.content, m.is_error) for m in request.messages if m.role == "tool"]


def test_low_risk_tool_then_answer(local_cloud: LocalCloud) -> None:
    echo = EchoTool()
    model = ScriptedChatModel([ToolUse([call("echo", {"text": "hi"})]), "Done: hi."])
    service, _ = use(model, echo)
    task = service.start(OWNER, "say hi")
    done = wait(service, task.task_id)
    assert done.status == "succeeded", done
    assert done.answer == "Done: hi."
    assert echo.runs == 1
    assert tool_results(model.requests[1]) == [("hi", False)]
    kinds = [(s.kind, s.tool) for s in service.store.timeline(task.task_id)]
    assert kinds == [("model", None), ("tool", "echo"), ("model", None), ("finish", None)]
    assert done.steps == 2 and done.input_tokens > 0 and done.output_tokens > 0


def test_high_risk_call_waits_for_approval_and_runs_once(local_cloud: LocalCloud) -> None:
    send = SendTool()
    model = ScriptedChatModel(
        [ToolUse([call("send", {"to": "legal@example.com", "body": "table"})]), "Sent."]
    )
    service, approvals = use(model, send)
    task = service.start(OWNER, "send the table")
    approval = wait_pending(approvals, task.task_id)
    assert wait(service, task.task_id, {"waiting_approval"}).status == "waiting_approval"
    assert send.sent == []  # nothing runs before a person approves
    assert approval.tool == "send" and approval.arguments["to"] == "legal@example.com"
    approvals.decide(approval.approval_id, approve=True)
    done = wait(service, task.task_id)
    assert done.status == "succeeded"
    assert send.sent == [("legal@example.com", "table")]
    with pytest.raises(ApprovalClosed):
        approvals.decide(approval.approval_id, approve=True)


def test_denied_call_does_not_run_and_the_model_is_told(local_cloud: LocalCloud) -> None:
    send = SendTool()
    model = ScriptedChatModel(
        [ToolUse([call("send", {"to": "x@example.com", "body": "b"})]), "It was refused."]
    )
    service, approvals = use(model, send)
    task = service.start(OWNER, "send it")
    approval = wait_pending(approvals, task.task_id)
    approvals.decide(approval.approval_id, approve=False, decided_by="boss")
    done = wait(service, task.task_id)
    assert done.status == "succeeded" and send.sent == []
    [(text, is_error)] = tool_results(model.requests[1])
    assert is_error and "refused" in text and "boss" in text
    timeline = service.store.timeline(task.task_id)
    assert [(s.kind, s.status) for s in timeline if s.n == 1] == [
        ("approval", "denied"),
        ("tool", "refused"),
    ]


def test_bad_tool_calls_become_errors_the_model_sees(local_cloud: LocalCloud) -> None:
    echo = EchoTool()
    model = ScriptedChatModel(
        [
            ToolUse(
                [
                    call("teleport", {"to": "mars"}, "c1"),
                    call("echo", '{"text": "unterminated', "c2"),
                    call("echo", {"text": ""}, "c3"),
                    call("echo", {"text": "ok", "shout": True}, "c4"),
                    call("echo", {"text": "fine"}, "c5"),
                ]
            ),
            "Recovered.",
        ]
    )
    service, _ = use(model, echo)
    task = service.start(OWNER, "try things")
    done = wait(service, task.task_id)
    assert done.status == "succeeded"
    results = tool_results(model.requests[1])
    assert results[0][1] and "unknown_tool" in results[0][0] and "echo" in results[0][0]
    assert results[1][1] and "not valid JSON" in results[1][0]
    assert results[2][1] and "text" in results[2][0]
    assert results[3][1] and "shout" in results[3][0]
    assert results[4] == ("fine", False)
    assert echo.runs == 1  # only the valid call ran


def test_step_cap_ends_the_task_with_a_summary(local_cloud: LocalCloud) -> None:
    echo = EchoTool()
    model = ScriptedChatModel(lambda r: ToolUse([call("echo", {"text": "again"})]))
    service, _ = use(model, echo)
    task = service.start(OWNER, "loop forever", max_steps=3)
    done = wait(service, task.task_id)
    assert done.status == "step_limit"
    assert len(model.requests) == 3 and echo.runs == 3
    assert done.answer is not None and "cap of 3" in done.answer and "echo" in done.answer


def test_token_budget_stops_the_task(local_cloud: LocalCloud) -> None:
    echo = EchoTool()
    model = ScriptedChatModel(lambda r: ToolUse([call("echo", {"text": "x" * 50})]))
    service, _ = use(model, echo)
    frugal = OWNER.model_copy(update={"tenant": "frugal"})
    task = service.start(frugal, "spend")
    done = wait(service, task.task_id)
    assert done.status == "budget_exceeded"
    assert service.store.tokens_used("frugal") <= 300
    assert "budget" in (done.answer or "")


def test_history_over_256_kib_is_passed_by_reference(local_cloud: LocalCloud) -> None:
    echo = EchoTool()
    big = {"text": "0123456789abcdef", "repeat": 10_000}  # 160 KB per result
    model = ScriptedChatModel(
        [ToolUse([call("echo", big, "c1")]), ToolUse([call("echo", big, "c2")]), "Big."]
    )
    service, _ = use(model, echo, tool_result_max_chars=200_000)
    task = service.start(OWNER, "grow the history")
    done = wait(service, task.task_id)
    assert done.status == "succeeded"
    history = sum(len(m.model_dump_json()) for m in service.store.messages(task.task_id))
    assert history > 256 * 1024
    from docket import aws

    events = aws.client("stepfunctions").get_execution_history(
        executionArn=done.execution_arn, maxResults=1000
    )["events"]
    payloads = [
        d.get("input") or d.get("output") or ""
        for e in events
        for k, d in e.items()
        if k.endswith("EventDetails") and isinstance(d, dict)
    ]
    assert payloads and max(len(p) for p in payloads) < 4096


def test_a_failing_model_fails_the_task_with_the_reason(local_cloud: LocalCloud) -> None:
    model = ScriptedChatModel(lambda r: (_ for _ in ()).throw(ProviderError("model is down")))
    service, _ = use(model, EchoTool())
    task = service.start(OWNER, "anything")
    done = wait(service, task.task_id, timeout=120)
    assert done.status == "failed"
    assert "model is down" in (done.error or "")
    assert len(model.requests) == 4  # the first call and the ASL's three retries


def test_stopping_a_waiting_task_closes_its_approval(local_cloud: LocalCloud) -> None:
    send = SendTool()
    model = ScriptedChatModel([ToolUse([call("send", {"to": "a@example.com", "body": "b"})])])
    service, approvals = use(model, send)
    task = service.start(OWNER, "send then stop")
    approval = wait_pending(approvals, task.task_id)
    stopped = service.stop(OWNER, task.task_id)
    assert stopped.status == "stopped"
    assert approvals.records[approval.approval_id].status == "cancelled"
    with pytest.raises(ApprovalClosed):
        approvals.decide(approval.approval_id, approve=True)
    assert send.sent == []
    assert service.store.get(task.task_id).status == "stopped"


def test_a_tool_timing_out_or_failing_upstream_is_a_result_not_a_crash(
    local_cloud: LocalCloud,
) -> None:
    from tests.integration.agent_doubles import FlakyApiTool, SlowTool

    model = ScriptedChatModel(
        [
            ToolUse([call("slow", {"text": "x"}, "c1"), call("flaky_api", {"text": "y"}, "c2")]),
            "Both failed; nothing else to do.",
        ]
    )
    service, _ = use(model, SlowTool(), FlakyApiTool(), tool_timeout_seconds=0.5)
    task = service.start(OWNER, "call the slow and the broken tool")
    done = wait(service, task.task_id)
    assert done.status == "succeeded"
    (slow, slow_error), (flaky, flaky_error) = tool_results(model.requests[1])
    assert slow_error and slow.startswith("tool_timeout:")
    assert flaky_error and flaky.startswith("tool_unavailable:") and "503" in flaky
    details = [s.detail for s in service.store.timeline(task.task_id) if s.kind == "tool"]
    assert details == ["tool_timeout", "tool_unavailable"]


def test_only_the_owner_sees_or_stops_a_task_and_the_cap_is_a_ceiling(
    local_cloud: LocalCloud,
) -> None:
    from docket.errors import NotFound

    service, _ = use(ScriptedChatModel(["Nothing to do."]), EchoTool())
    task = service.start(OWNER, "quick", max_steps=99)
    assert task.max_steps == 12  # a caller may lower the cap, never raise it
    assert wait(service, task.task_id).status == "succeeded"
    colleague = OWNER.model_copy(update={"subject": "bob", "groups": frozenset({"sales"})})
    with pytest.raises(NotFound):
        service.show(colleague, task.task_id)  # the timeline holds what ana's groups could read
    with pytest.raises(NotFound):
        service.stop(colleague, task.task_id)
    admin = colleague.model_copy(update={"scopes": frozenset({"tasks:admin"})})
    assert service.show(admin, task.task_id)["task"]["status"] == "succeeded"
    # stopping a task that has finished keeps its answer
    assert service.stop(OWNER, task.task_id).answer == "Nothing to do."
    assert service.store.get(task.task_id).status == "succeeded"


def test_a_task_whose_execution_cannot_start_is_failed_not_running(
    local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    from docket.errors import StoreUnavailable

    service, _ = use(ScriptedChatModel(["never asked"]), EchoTool())

    def refuse(*args: Any) -> str:
        raise StoreUnavailable("states: throttled")

    monkeypatch.setattr(service.workflow, "start", refuse)
    with pytest.raises(StoreUnavailable):
        service.start(OWNER, "a task that cannot start")
    [task] = [t for t in _tasks_of(service, OWNER) if t.prompt == "a task that cannot start"]
    assert task.status == "failed" and "throttled" in (task.error or "")


def _tasks_of(service: AgentService, principal: Principal) -> list[TaskRecord]:
    from docket import aws
    from docket.store.dynamodb import codec

    items = aws.client("dynamodb").query(
        TableName=service.store.table_name,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p",
        ExpressionAttributeValues={":p": {"S": f"TENANT#{principal.tenant}"}},
    )["Items"]
    return [TaskRecord.model_validate_json(codec.from_item(i)["record"]) for i in items]


def test_a_retried_model_step_reuses_the_stored_reply(local_cloud: LocalCloud) -> None:
    echo = EchoTool()
    model = ScriptedChatModel([ToolUse([call("echo", {"text": "once"})]), "Done."])
    service, _ = use(model, echo)
    task = service.start(OWNER, "say once")
    assert wait(service, task.task_id).status == "succeeded"
    asked = len(model.requests)
    again = service.call_model(task.task_id, 0)  # as the ASL's retry of CallModel would
    assert len(model.requests) == asked  # the model was not asked again
    assert again.outcome == "tool_calls" and [c["tool"] for c in again.calls] == ["echo"]
