"""The ASL files keep the rules the style and the issue set: JSONPath only, ARNs as placeholders
the wiring fills, every Task bounded in time and retried, every wait for a token bounded."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docket.wiring import WIRING

ROOT = Path(__file__).resolve().parents[2] / "state_machines"
SPECS = {spec.definition: spec for spec in WIRING.state_machines}


def states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the States map it is in), nested Map/Parallel states included."""
    for name, state in definition["States"].items():
        yield name, state, definition["States"]
        for inner in [
            state.get("ItemProcessor"),
            state.get("Iterator"),
            *state.get("Branches", []),
        ]:
            if inner:
                yield from states(inner)


@pytest.fixture(params=sorted(p.name for p in ROOT.glob("*.asl.json")))
def asl(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, json.loads((ROOT / request.param).read_text())


def test_every_file_is_wired(asl: tuple[str, dict[str, Any]]) -> None:
    name, definition = asl
    assert name in SPECS
    placeholders = set(re.findall(r"\$\{(\w+)\}", json.dumps(definition)))
    assert placeholders == set(SPECS[name].functions)
    assert definition.get("QueryLanguage", "JSONPath") == "JSONPath"


def test_transitions_point_at_states_that_exist(asl: tuple[str, dict[str, Any]]) -> None:
    for name, state, scope in states(asl[1]):
        targets = [state.get("Next"), state.get("Default")]
        targets += [c.get("Next") for c in state.get("Choices", [])]
        targets += [c.get("Next") for c in state.get("Catch", [])]
        for target in filter(None, targets):
            assert target in scope, f"{name} → {target}"
        assert state.get("End") or state["Type"] in ("Choice", "Succeed", "Fail") or "Next" in state


def test_every_task_is_retried_and_bounded(asl: tuple[str, dict[str, Any]]) -> None:
    for name, state, _ in states(asl[1]):
        if state["Type"] != "Task":
            continue
        assert state.get("Retry"), f"{name} has no Retry"
        assert "TimeoutSeconds" in state or "TimeoutSecondsPath" in state, name
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= retried, name


def test_the_agent_loop_keeps_its_promises() -> None:
    definition = json.loads((ROOT / "agent_loop.asl.json").read_text())
    found = {name: state for name, state, _ in states(definition)}
    approval = found["RequestApproval"]
    assert approval["Resource"].endswith("lambda:invoke.waitForTaskToken")
    assert approval["TimeoutSecondsPath"] == "$.approval_timeout_seconds"
    caught = {e for c in approval["Catch"] for e in c["ErrorEquals"]}
    assert {"Docket.ApprovalDenied", "States.Timeout"} <= caught
    assert all(c["Next"] == "Refuse" for c in approval["Catch"])
    run_retries = {e for r in found["RunTool"]["Retry"] for e in r["ErrorEquals"]}
    assert "IdempotencyAlreadyInProgressError" in run_retries  # a crashed attempt's record
    assert found["RunToolCalls"]["MaxConcurrency"] == 1  # calls run in the model's order
    assert found["StepCapReached?"]["Choices"][0]["NumericGreaterThanEqualsPath"] == (
        "$.config.max_steps"
    )


def test_model_failures_that_may_pass_are_retried_and_rejections_are_not() -> None:
    definition = json.loads((ROOT / "agent_loop.asl.json").read_text())
    found = {name: state for name, state, _ in states(definition)}
    retried = {e for r in found["CallModel"]["Retry"] for e in r["ErrorEquals"]}
    # a Lambda error carries the exception's class name, not its base class's
    assert {"ProviderThrottled", "ProviderUnavailable", "CircuitOpen"} <= retried
    assert "ProviderRejected" not in retried


def test_the_rebuild_aborts_on_any_failure_and_waits_for_its_job() -> None:
    definition = json.loads((ROOT / "reembed.asl.json").read_text())
    found = {name: state for name, state, _ in states(definition)}
    order = []
    name = definition["StartAt"]
    while name in found and found[name]["Type"] in ("Task", "Map", "Choice"):
        if found[name]["Type"] == "Choice":
            name = found[name]["Default"]
            continue
        order.append(name)
        name = found[name]["Next"]
    assert order == [
        "CreateGeneration",
        "StartDualWrite",
        "Snapshot",
        "EmbedBatch",
        "Load",
        "CatchUp",
        "Gate",
        "Cutover",
    ]
    for step in order:  # every step but Abort itself ends in Abort when it fails
        catches = found[step]["Catch"]
        assert [c["Next"] for c in catches] == ["Abort"], step
        assert catches[0]["ErrorEquals"] == ["States.ALL"], step
    assert found["Abort"]["Next"] == "Failed" and "Catch" not in found["Abort"]
    job = found["EmbedBatch"]
    assert job["Resource"].endswith("lambda:invoke.waitForTaskToken")
    assert job["TimeoutSecondsPath"] == "$.config.job_timeout_seconds"
    assert found["Load"]["MaxConcurrency"] >= 1
    # a person approves the cutover only when configured, and a denial aborts like a failure
    (approve,) = found["Approve?"]["Choices"]
    assert approve == {"Variable": "$.config.approve", "BooleanEquals": True, "Next": "Approve"}
    assert found["Approve?"]["Default"] == "Cutover"
    assert found["Approve"]["Resource"].endswith("lambda:invoke.waitForTaskToken")
    assert found["Approve"]["TimeoutSecondsPath"] == "$.config.approval_timeout_seconds"
    assert [c["Next"] for c in found["Approve"]["Catch"]] == ["Abort"]
    # a hosted model skips the job: each Load task embeds its shard through the provider
    (hosted,) = found["BatchJob?"]["Choices"]
    assert hosted == {
        "Variable": "$.snapshot.result.batch_job",
        "BooleanEquals": False,
        "Next": "Load",
    }
