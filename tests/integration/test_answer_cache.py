"""The answer cache on the local cloud: a repeated question is served from the cache, never to
another group set or tenant, and never after a chunk it quoted changed or left."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from docket.local.cloud import LocalCloud

from .conftest import Api, running_cloud

pytestmark = pytest.mark.integration

POLICY = b"Refunds: customers may return unused items within 30 days of delivery."
SALARIES = b"Salary bands are confidential: band A starts at 100,000 euros a year."


@pytest.fixture(scope="module")
def cloud_and_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Api]]:
    env = {"DOCKET_ANSWER_CACHE_TENANTS": "acme"}
    with running_cloud(tmp_path_factory.mktemp("cache"), env=env) as (cloud, api):
        for source, data, acl in (
            ("policy.txt", POLICY, None),
            ("salaries.txt", SALARIES, ["finance"]),
        ):
            api.wait_status(api.upload(source, data, acl=acl))
        for source, data in (("policy.txt", POLICY),):
            api.wait_status(api.upload(source, data, tenant="globex"), tenant="globex")
        yield cloud, api


@pytest.fixture(scope="module")
def api(cloud_and_api: tuple[LocalCloud, Api]) -> Api:
    return cloud_and_api[1]


def test_a_repeated_question_is_served_from_the_cache(api: Api) -> None:
    first = api.ask("How many days do customers have to return an item?")
    assert first["found"] and not first["cached"]
    again = api.ask("how many days do customers have to return an item")
    assert again["cached"] and again["cache_age_s"] >= 0
    assert again["answer"] == first["answer"] and again["citations"] == first["citations"]
    assert set(again["timings_ms"]) == {"cache", "total"}
    for bypass in ({"no_cache": True}, {"rerank": False}):
        fresh = api.ask("How many days do customers have to return an item?", **bypass)
        assert not fresh["cached"], bypass


def test_never_across_groups_or_tenants(api: Api) -> None:
    question = "What does salary band A start at?"
    finance = api.ask(question, groups=("finance",))
    assert finance["found"] and not finance["cached"]
    assert api.ask(question, groups=("finance",))["cached"]
    # the same question without the group: its own partition, and it cannot see the answer
    staff = api.ask(question)
    assert not staff["cached"] and "100,000" not in staff["answer"]
    other = api.ask("How many days do customers have to return an item?", tenant="globex")
    assert not other["cached"]  # globex has the cache off
    assert not api.ask("How many days do customers have to return an item?", tenant="globex")[
        "cached"
    ]


def test_a_changed_or_deleted_document_is_never_served_from_the_cache(api: Api) -> None:
    question = "Within how many days may unused items be returned?"
    assert not api.ask(question)["cached"]
    assert api.ask(question)["cached"]
    document_id = api.upload(
        "policy.txt", b"Refunds: customers may return unused items within 14 days of delivery."
    )
    api.wait_status(document_id)
    changed = api.ask(question)
    assert not changed["cached"] and "14 days" in changed["answer"]
    assert api.ask(question)["cached"]
    assert api.call("DELETE", f"/documents/{document_id}").status_code == 202
    after = api.ask(question)
    assert not after["cached"]
    assert all(c["document_id"] != document_id for c in after["citations"])
