"""The rebuild's optional Approve step (DOCKET_REEMBED_APPROVAL) on the local cloud: the cutover
waits for a person's decision through the agent's approvals; the one who started the rebuild
cannot approve it, and a denial aborts while live stays. Its own module: a local cloud per
module (moto is one process-wide mock)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from docket.local.cloud import LocalCloud

from .conftest import Api, running_cloud
from .test_reembed import DOCS, Admin, _ingest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def approving_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Api]]:
    with running_cloud(
        tmp_path_factory.mktemp("reembed-approval"),
        env={
            "DOCKET_EMBEDDING_PRECISION": "fp32",
            "DOCKET_GENERATION_CACHE_SECONDS": "0",
            "DOCKET_REEMBED_APPROVAL": "true",
        },
    ) as running:
        yield running


def _wait_stage(admin: Admin, number: int, stage: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        g = next(g for g in admin.status()["generations"] if g["number"] == number)
        if g["state"] != "building" or g["stage"] == stage:
            return g  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise TimeoutError(f"generation {number} never reached {stage}")


def test_a_configured_approval_holds_the_cutover_until_someone_else_decides(
    approving_cloud: tuple[LocalCloud, Api],
) -> None:
    _, api = approving_cloud
    admin = Admin(api)  # dev-user@acme, who starts the rebuilds
    _ingest(api, {"tides.txt": DOCS["tides.txt"], "bees.txt": DOCS["bees.txt"]})
    reviewer = ("approvers",)

    number = admin("POST", "/index/generations", json={"model": "all-MiniLM-L6-v2-int8"}).json()[
        "generation"
    ]["number"]
    g = _wait_stage(admin, number, "approve")
    assert (g["state"], g["stage"]) == ("building", "approve")
    (approval,) = api.call("GET", "/approvals", groups=reviewer, subject="rev@acme").json()[
        "approvals"
    ]
    assert approval["tool"] == "index_cutover"
    assert dict(map(tuple, approval["summary"]))["Chunks"] == "2"
    # the one who started it cannot approve it (four eyes)
    own = api.call(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        groups=reviewer,
        json={"decision": "approve"},
    )
    assert own.status_code == 403, own.text
    ok = api.call(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        groups=reviewer,
        subject="rev@acme",
        json={"decision": "approve"},
    )
    assert ok.status_code == 200, ok.text
    assert admin.wait(number)["state"] == "live"

    # a denial aborts the next one, and live stays
    number = admin("POST", "/index/generations", json={"model": "all-MiniLM-L6-v2"}).json()[
        "generation"
    ]["number"]
    _wait_stage(admin, number, "approve")
    (approval,) = api.call("GET", "/approvals", groups=reviewer, subject="rev@acme").json()[
        "approvals"
    ]
    denied = api.call(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        groups=reviewer,
        subject="rev@acme",
        json={"decision": "deny", "comment": "not now"},
    )
    assert denied.status_code == 200, denied.text
    g = admin.wait(number)
    assert g["state"] == "aborted" and g["reason"].startswith("approve: ")
    assert admin.status()["live"]["model"] == "all-MiniLM-L6-v2-int8"
