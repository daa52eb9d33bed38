"""The MCP server at /mcp of the local gateway, driven by the official SDK's own client over HTTP.

Contract: for the same token and the same questions, the MCP ``search`` and ``ask`` tools return
the chunk ids ``POST /query`` returns, in the same order. Isolation: a tool never returns another
tenant's or a foreign group's chunk or document. Bad input: no token → 401 in the MCP error
shape; malformed JSON-RPC → a JSON-RPC error, never a 500; a tool's bad arguments → a tool error
naming the field.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from mcp.client.streamable_http import streamable_http_client

from mcp import ClientSession

from .conftest import Api

pytestmark = pytest.mark.integration

T = TypeVar("T")

# Forty short documents on distinct topics: a corpus where the rankings have something to order.
TOPICS = [
    ("refunds", "Customers may return unused items within 30 days of delivery for a refund."),
    ("shipping", "Standard shipping takes three to five business days within the country."),
    ("express", "Express shipping arrives the next business day for orders placed before noon."),
    ("warranty", "Every appliance carries a two year warranty covering parts and labour."),
    ("passwords", "Passwords must have twelve characters and are rotated every ninety days."),
    ("vpn", "Remote staff connect through the VPN, which requires a hardware security key."),
    ("travel", "Hotel stays are reimbursed up to 180 euros per night in Paris."),
    ("meals", "Meals during business travel are reimbursed up to 40 euros per day."),
    ("leave", "Full-time employees accrue twenty days of paid leave each year."),
    ("parental", "Parents receive sixteen weeks of paid parental leave after a birth."),
    ("onboarding", "New hires meet their mentor on the first day and finish training in a week."),
    ("laptops", "Engineers receive a laptop with 32 GB of memory, replaced every three years."),
    ("printing", "Colour printing needs a badge swipe at the printer on the third floor."),
    ("parking", "The garage has 120 spaces; electric cars charge free of charge on level two."),
    ("cafeteria", "The cafeteria serves lunch from noon to two and closes on public holidays."),
    ("security", "Visitors sign in at reception and wear a visible badge at all times."),
    ("backups", "Databases are backed up every night and the copies are kept for 35 days."),
    ("incidents", "Severity one incidents page the on-call engineer within five minutes."),
    ("releases", "Production releases happen on Tuesdays and Thursdays after code review."),
    ("budgets", "Department budgets are set in October and reviewed each quarter."),
    ("invoices", "Suppliers are paid within 45 days of receiving a correct invoice."),
    ("expenses", "Expense reports are filed within thirty days with scanned receipts."),
    ("training", "Each employee has a training budget of 1,500 euros per year."),
    ("wellness", "The wellness program covers gym memberships up to 30 euros a month."),
    ("recycling", "Paper, glass and batteries go into separate bins on every floor."),
    ("meetings", "Meeting rooms are booked in the calendar and released after ten minutes."),
    ("hardware", "Broken hardware is exchanged at the IT desk on the ground floor."),
    ("privacy", "Personal data is deleted thirty days after a customer closes the account."),
    ("contracts", "Contracts above 50,000 euros need the signature of two directors."),
    ("audits", "An external auditor reviews the accounts every spring."),
]
# restricted to the finance group
RESTRICTED = [
    ("salaries", "Salary bands are confidential: band A starts at 100,000 euros a year."),
    ("bonuses", "Bonuses are paid in March and depend on the company result."),
    ("forecast", "The revenue forecast for next year is 12 million euros."),
]
QUESTIONS = [
    *(f"What is the rule about {topic}?" for topic, _ in TOPICS + RESTRICTED),
    "How many days do customers have to return an item?",
    "How long does standard shipping take?",
    "When do production releases happen?",
    "How much is reimbursed for a hotel in Paris?",
    "How often are passwords rotated?",
    "How many weeks of parental leave are there?",
    "What is the training budget per employee?",
    "Who reviews the accounts every spring?",
    "Where do visitors sign in?",
    "How long are database backups kept?",
    "What do salary bands start at?",
    "When are bonuses paid?",
    "What is the revenue forecast?",
    "How many parking spaces does the garage have?",
    "What are the opening hours of the cafeteria?",
    "Which contracts need two signatures?",
    "What does the wellness program cover?",
    "How fast are severity one incidents handled?",
    "What is the colour of the sky on Mars?",
    "quantum chromodynamics lattice simulation",
]


def run(coroutine: Awaitable[T]) -> T:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


async def with_session(
    api: Api, tenant: str, groups: tuple[str, ...], work: Callable[[ClientSession], Awaitable[T]]
) -> T:
    headers = {"Authorization": f"Bearer {api.token(tenant, groups)}"}
    async with (
        httpx.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{api.url}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await work(session)


async def tool(session: ClientSession, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(name, arguments)
    assert not result.isError, result.content
    assert result.structuredContent is not None
    return result.structuredContent


@pytest.fixture(scope="module")
def corpus(api: Api) -> dict[str, str]:
    """source -> document id, every document indexed."""
    ids = {}
    for topic, text in TOPICS:
        ids[f"kb/{topic}.md"] = api.upload(f"kb/{topic}.md", f"# {topic}\n\n{text}\n".encode())
    for topic, text in RESTRICTED:
        source = f"finance/{topic}.md"
        ids[source] = api.upload(source, f"# {topic}\n\n{text}\n".encode(), acl=["finance"])
    ids["other/secret.md"] = api.upload(
        "other/secret.md", b"# refunds\n\nGlobex refunds within 3 days.\n", tenant="globex"
    )
    for document_id in ids.values():
        tenant = "globex" if document_id == ids["other/secret.md"] else "acme"
        assert api.wait_status(document_id, tenant)["status"] == "indexed"
    return ids


@pytest.mark.parametrize("groups", [(), ("finance",)])
def test_mcp_search_and_ask_return_the_chunks_post_query_returns(
    api: Api, corpus: dict[str, str], groups: tuple[str, ...]
) -> None:
    # Given the same token over MCP and REST, and 50+ questions (two of them off the corpus)
    assert len(QUESTIONS) >= 50

    async def ask_all(session: ClientSession) -> list[tuple[list[str], list[str], str]]:
        out = []
        for question in QUESTIONS:
            searched = await tool(session, "search", {"question": question, "top_k": 8})
            asked = await tool(session, "ask", {"question": question, "top_k": 8})
            out.append(
                (
                    [c["chunk_id"] for c in searched["chunks"]],
                    [c["chunk_id"] for c in asked["chunks"]],
                    asked["answer"],
                )
            )
        return out

    # When each is searched and asked over MCP, and asked through POST /query
    over_mcp = run(with_session(api, "acme", groups, ask_all))
    for question, (searched, asked, answer) in zip(QUESTIONS, over_mcp, strict=True):
        rest = api.ask(question, "acme", groups, top_k=8)
        expected = [c["chunk_id"] for c in rest["chunks"]]
        # Then the same chunk ids come back in the same order, and the same answer
        assert searched == expected, question
        assert asked == expected, question
        assert answer == rest["answer"], question


def test_tools_see_only_the_callers_tenant_and_groups(api: Api, corpus: dict[str, str]) -> None:
    # Given acme's documents (three restricted to finance) and one of globex's
    finance = {corpus[f"finance/{t}.md"] for t, _ in RESTRICTED}
    globex = corpus["other/secret.md"]

    async def look(session: ClientSession) -> tuple[set[str], set[str], list[bool]]:
        listed = await tool(session, "list_sources", {})
        found: set[str] = set()
        for question in ("salary bands", "refunds within 3 days", "revenue forecast"):
            hits = await tool(session, "search", {"question": question, "top_k": 50})
            found |= {c["document_id"] for c in hits["chunks"]}
        reads = []
        for document_id in (*finance, globex):
            result = await session.call_tool("get_document", {"document_id": document_id})
            reads.append(bool(result.isError))
        return {d["document_id"] for d in listed["documents"]}, found, reads

    # When a caller without the finance group lists, searches and reads over MCP
    listed, found, refused = run(with_session(api, "acme", (), look))
    # Then neither finance's nor globex's documents appear, and reading them is refused
    assert listed == set(corpus.values()) - finance - {globex}
    assert not found & (finance | {globex})
    assert all(refused)
    # while a finance member sees finance's documents and still not globex's
    listed, found, refused = run(with_session(api, "acme", ("finance",), look))
    assert finance <= listed and globex not in listed
    assert finance & found and globex not in found
    assert refused == [False] * len(finance) + [True]


def test_get_document_pages_through_the_text(api: Api, corpus: dict[str, str]) -> None:
    document_id = corpus["kb/refunds.md"]

    async def read(session: ClientSession) -> tuple[dict[str, Any], Any]:
        first = await tool(session, "get_document", {"document_id": document_id})
        past = await session.call_tool(
            "get_document", {"document_id": document_id, "page": first["pages"] + 1}
        )
        return first, past

    first, past = run(with_session(api, "acme", (), read))
    assert first["document"]["document_id"] == document_id
    assert first["page"] == 1 and first["pages"] == 1
    assert "30 days of delivery" in first["text"]
    assert past.isError
    assert json.loads(past.content[0].text)["error"]["code"] == "invalid_request"


def test_bad_tool_arguments_are_tool_errors_naming_the_field(api: Api, corpus: dict) -> None:
    async def call(session: ClientSession) -> list[Any]:
        return [
            await session.call_tool("search", {"question": 5}),
            await session.call_tool("search", {"question": "x", "top_k": 500}),
            await session.call_tool("ask", {"question": "x", "extra": True, "mode": "magic"}),
            await session.call_tool("get_document", {"document_id": "../etc/passwd"}),
            await session.call_tool("no_such_tool", {}),
        ]

    results = run(with_session(api, "acme", (), call))
    errors = [json.loads(r.content[0].text)["error"] for r in results]
    assert all(r.isError for r in results)
    assert all(e["code"] == "invalid_request" for e in errors)
    assert errors[0]["message"].startswith("question")
    assert errors[1]["message"].startswith("top_k")
    assert errors[2]["message"].startswith("mode")
    assert errors[3]["message"].startswith("document_id")
    assert "no_such_tool" in errors[4]["message"]


def test_no_token_and_malformed_json_rpc_get_json_rpc_errors(api: Api) -> None:
    url = f"{api.url}/mcp"
    accept = {"accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    # no token, and a forged one: 401 with the MCP error shape and the challenge
    for headers in ({}, {"authorization": "Bearer not.a.token"}):
        resp = httpx.post(url, json=init, headers={**accept, **headers})
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"] == "Bearer"
        body = resp.json()
        assert body["jsonrpc"] == "2.0" and body["id"] is None
        assert body["error"]["code"] == -32001
    # malformed JSON-RPC with a valid token: a JSON-RPC error, never a 5xx
    auth = {"authorization": f"Bearer {api.token('acme')}", **accept}
    bad_bodies: list[bytes] = [
        b"{not json",
        b"[]",
        b'{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}',
        b'{"jsonrpc": "2.0", "id": 1}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "x"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
    ]
    for raw in bad_bodies:
        resp = httpx.post(url, content=raw, headers={**auth, "content-type": "application/json"})
        assert resp.status_code < 500, (raw, resp.status_code, resp.text)
        assert "error" in resp.json(), (raw, resp.text)
