"""The agent's tools: registry validation, fixed risk, outputs, and the principal they act for."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from docket.agent.notify import EmailMessage
from docket.agent.outbox import Outbox
from docket.agent.tools import default_registry
from docket.agent.tools.base import ToolContext, ToolRegistry
from docket.agent.tools.dynamo import QueryTableInput, parse_select
from docket.agent.tools.services import (
    DocumentServiceAccess,
    DocumentText,
    DynamoTableQuery,
    QueryServiceSearch,
    TableRows,
    ToolServices,
)
from docket.config import Settings
from docket.documents import DocumentService
from docket.errors import (
    DestinationNotAllowed,
    InvalidToolArguments,
    ToolError,
    UnknownTool,
)
from docket.models import (
    ChunkRecord,
    DocumentRecord,
    DocumentStatus,
    ExtractedDocument,
    Page,
    Principal,
    SearchHit,
    document_id_for,
)
from tests.unit.agent.test_outbox import TABLE, create_agent_table
from tests.unit.fakes import FakeBlobStore, FakeDocumentStore

TOOLS = {
    "search_documents",
    "read_document",
    "make_table",
    "send_email",
    "post_slack_message",
    "http_request",
    "delete_document",
    "query_table",
}
OWNER = Principal(subject="alice", tenant="acme", groups=frozenset({"legal"}))
DOC_ID = document_id_for("acme", "contracts/globex.pdf")


# --- fakes ------------------------------------------------------------------------------------


class FakeSearch:
    def __init__(self, hits: list[SearchHit] | None = None) -> None:
        self.hits = hits or []
        self.calls: list[tuple[Principal, str, int]] = []

    def search(self, principal: Principal, query: str, top_k: int) -> list[SearchHit]:
        self.calls.append((principal, query, top_k))
        return self.hits[:top_k]


class FakeDocuments:
    def __init__(self) -> None:
        self.reads: list[tuple[Principal, str]] = []
        self.deletes: list[tuple[Principal, str]] = []

    def read(self, principal: Principal, document_id: str) -> DocumentText:
        self.reads.append((principal, document_id))
        doc = DocumentRecord(
            tenant=principal.tenant, document_id=document_id, source="a.txt", title="A"
        )
        return DocumentText(document=doc, text="Termination: 30 days' notice.")

    def delete(self, principal: Principal, document_id: str) -> DocumentRecord:
        self.deletes.append((principal, document_id))
        return DocumentRecord(
            tenant=principal.tenant,
            document_id=document_id,
            source="a.txt",
            title="A",
            status=DocumentStatus.DELETING,
        )


class FakeEmailer:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> str:
        self.sent.append(message)
        return f"ses-{len(self.sent)}"


class FakeSlack:
    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        self.posts.append((channel, text))
        return f"171.{len(self.posts)}"


class FakeTables:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def select(self, statement: str, parameters: Any, limit: int) -> TableRows:
        self.calls.append(statement)
        return TableRows(rows=[])


class MemoryOutbox:
    """The outbox contract in memory, for tests that are not about the outbox itself."""

    def __init__(self) -> None:
        self.done: dict[str, dict[str, Any]] = {}

    def once(self, key: str, effect: Any) -> tuple[dict[str, Any], bool]:
        if key in self.done:
            return self.done[key], True
        self.done[key] = effect()
        return self.done[key], False


def settings(**overrides: Any) -> Settings:
    return Settings(query_tables=frozenset({"orders"}), **overrides)


def services(**overrides: Any) -> ToolServices:
    parts: dict[str, Any] = {
        "settings": settings(),
        "search": FakeSearch(),
        "documents": FakeDocuments(),
        "emailer": FakeEmailer(),
        "slack": FakeSlack(),
        "tables": FakeTables(),
        "outbox": MemoryOutbox(),
    }
    parts.update(overrides)
    return ToolServices(**parts)


def context(svc: ToolServices, key: str = "key-1", principal: Principal = OWNER) -> ToolContext:
    return ToolContext(
        task_id="task_" + "0" * 24,
        principal=principal,
        execution="arn:aws:states:us-east-1:123456789012:execution:agent:x",
        step=0,
        call_id="call_1",
        idempotency_key=key,
        timeout_s=5.0,
        services=svc,
    )


def run(
    registry: ToolRegistry, name: str, args: dict[str, Any], svc: ToolServices, key: str = "key-1"
) -> str:
    checked = registry.validate(name, args)
    return checked.tool.run(context(svc, key), checked.args).content


@pytest.fixture
def registry() -> ToolRegistry:
    return default_registry()


@pytest.fixture
def agent_table() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_agent_table(client)
        yield client


# --- the registry ---------------------------------------------------------------------------------


def test_the_default_registry_offers_the_eight_tools_with_closed_schemas(registry: ToolRegistry):
    assert set(registry.names()) == TOOLS
    for spec in registry.specs():
        assert spec.input_schema["type"] == "object"
        assert spec.input_schema["additionalProperties"] is False
        assert len(spec.description) > 60  # written for a model: what and when


def test_an_unknown_tool_names_the_available_ones(registry: ToolRegistry):
    with pytest.raises(UnknownTool) as err:
        registry.validate("rm_rf", {})
    for name in TOOLS:
        assert name in err.value.message


def test_arguments_that_are_not_json_are_refused(registry: ToolRegistry):
    with pytest.raises(InvalidToolArguments, match="not valid JSON"):
        registry.validate("send_email", '{"to": ["a@example.com"], "subject": ')


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"subject": "Hi", "body": "x"}, "to"),
        ({"to": ["not-an-address"], "subject": "Hi", "body": "x"}, "to.0"),
        ({"to": ["a@example.com", "b@@example.com"], "subject": "Hi", "body": "x"}, "to.1"),
        ({"to": ["a@example.com"], "subject": "Hi", "body": "x", "cc": ["x y@z.com"]}, "cc.0"),
        ({"to": ["a@example.com"], "subject": "Hi", "body": "x", "bcc": ["z@z.com"]}, "bcc"),
        ({"to": [], "subject": "Hi", "body": "x"}, "to"),
    ],
)
def test_schema_failures_name_the_field(registry: ToolRegistry, args: dict[str, Any], field: str):
    with pytest.raises(InvalidToolArguments) as err:
        registry.validate("send_email", args)
    assert f"{field}:" in err.value.message


def test_a_valid_email_call_passes(registry: ToolRegistry):
    checked = registry.validate(
        "send_email",
        json.dumps({"to": ["legal@example.com"], "subject": "Report", "body": "Hello"}),
    )
    assert checked.tool.name == "send_email" and checked.risk == "high"


# --- risk is code ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "risk"),
    [
        ("http_request", {"url": "https://api.example.com/x"}, "low"),
        (
            "http_request",
            {"method": "POST", "url": "https://api.example.com/x", "body": "{}"},
            "high",
        ),
        ("http_request", {"method": "DELETE", "url": "https://api.example.com/x"}, "high"),
        ("send_email", {"to": ["a@example.com"], "subject": "s", "body": "b"}, "high"),
        ("post_slack_message", {"channel": "#general", "text": "hi"}, "high"),
        ("delete_document", {"document_id": DOC_ID}, "high"),
        ("search_documents", {"query": "termination"}, "low"),
        ("read_document", {"document_id": DOC_ID}, "low"),
        ("query_table", {"statement": 'SELECT * FROM "orders"'}, "low"),
        ("make_table", {"title": "t", "columns": ["a"], "rows": [["1"]]}, "low"),
    ],
)
def test_risk_is_fixed_by_the_tool(
    registry: ToolRegistry, name: str, args: dict[str, Any], risk: str
):
    assert registry.validate(name, args).risk == risk


@pytest.mark.parametrize("claim", [{"risk": "low"}, {"approved": True}])
def test_arguments_cannot_claim_a_lower_risk(registry: ToolRegistry, claim: dict[str, Any]):
    args = {"to": ["a@example.com"], "subject": "s", "body": "b", **claim}
    with pytest.raises(InvalidToolArguments, match=next(iter(claim))):
        registry.validate("send_email", args)


def test_approval_summaries_say_what_will_happen(registry: ToolRegistry):
    email = registry.validate(
        "send_email",
        {"to": ["a@example.com", "b@example.com"], "subject": "Q3", "body": "Numbers", "cc": []},
    )
    assert email.tool.summary(email.args) == [
        ("To", "a@example.com, b@example.com"),
        ("Cc", "(none)"),
        ("Subject", "Q3"),
        ("Body", "Numbers"),
    ]
    slack = registry.validate("post_slack_message", {"channel": "#ops", "text": "done"})
    assert slack.tool.summary(slack.args) == [("Channel", "#ops"), ("Message", "done")]
    http = registry.validate(
        "http_request", {"method": "PUT", "url": "https://x.example.com/a", "body": "b"}
    )
    assert http.tool.summary(http.args) == [
        ("Method", "PUT"),
        ("URL", "https://x.example.com/a"),
        ("Body", "b"),
    ]
    delete = registry.validate("delete_document", {"document_id": DOC_ID})
    assert delete.tool.summary(delete.args) == [("Document", DOC_ID)]


# --- make_table --------------------------------------------------------------------------------------


def test_markdown_table_escapes_cells_so_rows_stay_rows(registry: ToolRegistry):
    args = {
        "title": "Termination\nclauses",
        "columns": ["Contract", "Notice"],
        "rows": [["Acme | Globex", "30 days\nwritten"], ["C:\\docs", "n/a"]],
    }
    out = run(registry, "make_table", args, services())
    assert out.splitlines() == [
        "**Termination clauses**",
        "",
        "| Contract | Notice |",
        "| --- | --- |",
        "| Acme \\| Globex | 30 days<br>written |",
        "| C:\\\\docs | n/a |",
    ]


def test_csv_table_quotes_cells_and_reads_back_the_same(registry: ToolRegistry):
    rows = [['say "hi", then leave', "a\nb"], ["plain", ""]]
    out = run(
        registry,
        "make_table",
        {"title": "t", "columns": ["x", "y"], "rows": rows, "format": "csv"},
        services(),
    )
    assert out.splitlines()[1] == '"say ""hi"", then leave","a'
    assert list(csv.reader(io.StringIO(out))) == [["x", "y"], *rows]


def test_rows_of_the_wrong_width_are_refused(registry: ToolRegistry):
    with pytest.raises(InvalidToolArguments, match=r"rows\[1\] has 1 cells"):
        registry.validate(
            "make_table", {"title": "t", "columns": ["a", "b"], "rows": [["1", "2"], ["3"]]}
        )


def test_a_long_table_is_cut_with_a_note(registry: ToolRegistry):
    svc = services(settings=settings(tool_result_max_chars=1000))
    rows = [[f"row {i} " + "x" * 40] for i in range(100)]
    out = run(registry, "make_table", {"title": "t", "columns": ["c"], "rows": rows}, svc)
    assert out.startswith("**t**") and "[cut:" in out
    assert len(out) < 1100


# --- side effects go through the outbox -----------------------------------------------------------


def test_send_email_sends_once_for_two_runs_with_the_same_key(
    registry: ToolRegistry, agent_table: Any
):
    # Given the real outbox on the agent table and a fake emailer
    emailer = FakeEmailer()
    svc = services(emailer=emailer, outbox=Outbox(TABLE, client=agent_table))
    args = {
        "to": ["legal@example.com"],
        "subject": "Report",
        "body": "See below",
        "cc": ["boss@example.com"],
    }
    # When the same call runs twice (a retried Lambda)
    first = run(registry, "send_email", args, svc)
    second = run(registry, "send_email", args, svc)
    # Then one e-mail went out, and the retry says it was replayed
    assert len(emailer.sent) == 1
    sent = emailer.sent[0]
    assert (sent.to, sent.cc, sent.subject, sent.text) == (
        ("legal@example.com",),
        ("boss@example.com",),
        "Report",
        "See below",
    )
    assert "ses-1" in first and "Replayed" not in first
    assert "ses-1" in second and "Replayed" in second
    # And another call (another key) is another e-mail
    run(registry, "send_email", args, svc, key="key-2")
    assert len(emailer.sent) == 2


def test_post_slack_message_posts_once_per_key(registry: ToolRegistry):
    slack = FakeSlack()
    svc = services(slack=slack)
    args = {"channel": "#ops", "text": "deployed"}
    run(registry, "post_slack_message", args, svc)
    out = run(registry, "post_slack_message", args, svc)
    assert slack.posts == [("#ops", "deployed")]
    assert "Replayed" in out


@pytest.mark.parametrize("channel", ["#general; rm", "#" + "x" * 81, "", "#a b"])
def test_bad_slack_channels_are_refused(registry: ToolRegistry, channel: str):
    with pytest.raises(InvalidToolArguments, match="channel"):
        registry.validate("post_slack_message", {"channel": channel, "text": "hi"})


# --- the principal comes from the task, never from the arguments -----------------------------------


def _hit(text: str, score: float) -> SearchHit:
    chunk = ChunkRecord(
        tenant="acme",
        document_id=DOC_ID,
        chunk_id="chk_" + "1" * 32,
        ordinal=0,
        text=text,
        page_start=2,
        page_end=3,
        source="contracts/globex.pdf",
        title="Globex MSA",
    )
    return SearchHit(chunk=chunk, score=score, retriever="hybrid")


def test_search_passes_the_task_owner_and_returns_hits_as_json(registry: ToolRegistry):
    search = FakeSearch([_hit("Either party may terminate on 30 days' notice.", 0.91234)])
    out = run(
        registry, "search_documents", {"query": "termination", "top_k": 3}, services(search=search)
    )
    assert search.calls == [(OWNER, "termination", 3)]
    assert json.loads(out)["hits"] == [
        {
            "document_id": DOC_ID,
            "title": "Globex MSA",
            "chunk_id": "chk_" + "1" * 32,
            "page_start": 2,
            "page_end": 3,
            "score": 0.9123,
            "text": "Either party may terminate on 30 days' notice.",
        }
    ]


def test_search_cannot_be_pointed_at_another_tenant(registry: ToolRegistry):
    with pytest.raises(InvalidToolArguments, match="tenant"):
        registry.validate("search_documents", {"query": "x", "tenant": "globex"})


def test_search_output_stays_json_when_cut(registry: ToolRegistry):
    search = FakeSearch([_hit("y" * 400, 1.0 - i / 100) for i in range(10)])
    svc = services(search=search, settings=settings(tool_result_max_chars=1000))
    out = run(registry, "search_documents", {"query": "q", "top_k": 10}, svc)
    payload = json.loads(out)
    assert len(out) <= 1000
    assert 0 < len(payload["hits"]) < 10 and "not shown" in payload["note"]


def test_query_service_search_retrieves_for_the_principal():
    # Given the query service (a fake with its retrieve signature)
    class Service:
        def __init__(self) -> None:
            self.calls: list[tuple[Principal, Any]] = []

        def retrieve(self, principal: Principal, request: Any) -> tuple[Any, dict[str, float]]:
            self.calls.append((principal, request))

            class Result:
                hits = [_hit("text", 0.5)]

            return Result(), {}

    service = Service()
    hits = QueryServiceSearch(service).search(OWNER, "notice period", 4)
    assert [h.chunk.text for h in hits] == ["text"]
    principal, request = service.calls[0]
    assert principal == OWNER
    assert (request.question, request.top_k) == ("notice period", 4)


def test_read_and_delete_pass_the_task_owner(registry: ToolRegistry):
    docs = FakeDocuments()
    svc = services(documents=docs)
    out = run(registry, "read_document", {"document_id": DOC_ID, "max_chars": 11}, svc)
    assert docs.reads == [(OWNER, DOC_ID)]
    assert out.startswith("# A\n") and "Termination" in out and "[cut at max_chars" in out
    run(registry, "delete_document", {"document_id": DOC_ID}, svc)
    out = run(registry, "delete_document", {"document_id": DOC_ID}, svc)
    assert docs.deletes == [(OWNER, DOC_ID)]  # the retry replayed; deleted once
    assert "Replayed" in out


# --- the documents adapter: tenant and ACL checked like the query path -----------------------------


class FakeIndex:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    def count_document(self, tenant: str, document_id: str) -> int:
        return 0

    def delete_document(self, tenant: str, document_id: str) -> int:
        self.deleted.append((tenant, document_id))
        return 1

    def commit(self) -> None:
        pass


@pytest.fixture
def library() -> tuple[DocumentServiceAccess, FakeDocumentStore, FakeIndex]:
    cfg = settings()
    store, blobs, index = FakeDocumentStore(), FakeBlobStore(), FakeIndex()
    text = ExtractedDocument(
        format="pdf", pages=[Page(number=1, text="Clause 9."), Page(number=2, text="End.")]
    )
    for tenant in ("acme", "globex"):
        doc_id = document_id_for(tenant, "contracts/globex.pdf")
        blobs.put(cfg.text_bucket, f"{tenant}/{doc_id}/t.json", text.model_dump_json().encode())
        store.put(
            DocumentRecord(
                tenant=tenant,
                document_id=doc_id,
                source="contracts/globex.pdf",
                s3_key=f"tenants/{tenant}/contracts/globex.pdf",
                title="Globex MSA",
                acl_groups=["legal"],
                status=DocumentStatus.INDEXED,
                text_key=f"{tenant}/{doc_id}/t.json",
            )
        )
    service = DocumentService(cfg, store, blobs, signer=None, index=index)  # type: ignore[arg-type]
    return DocumentServiceAccess(cfg, service), store, index


def test_a_document_is_read_for_a_member_of_its_group(library: Any):
    access, _, _ = library
    found = access.read(OWNER, DOC_ID)
    assert found.text == "Clause 9.\n\nEnd."
    assert found.document.title == "Globex MSA"


@pytest.mark.parametrize(
    "principal",
    [
        Principal(subject="bob", tenant="acme", groups=frozenset({"sales"})),  # not in the ACL
        Principal(subject="carol", tenant="initech", groups=frozenset({"legal"})),  # other tenant
    ],
)
def test_a_document_outside_the_principals_reach_is_not_found(library: Any, principal: Principal):
    access, store, index = library
    with pytest.raises(ToolError, match="not found"):
        access.read(principal, DOC_ID)
    with pytest.raises(ToolError, match="not found"):
        access.delete(principal, DOC_ID)
    assert index.deleted == []
    assert store.get("acme", DOC_ID).status == DocumentStatus.INDEXED


def test_a_document_without_extracted_text_is_a_tool_error(library: Any):
    access, store, _ = library
    doc = store.get("acme", DOC_ID)
    store.put(doc.model_copy(update={"text_key": None, "status": DocumentStatus.PENDING}))
    with pytest.raises(ToolError, match="no extracted text"):
        access.read(OWNER, DOC_ID)


def test_delete_removes_the_document_for_a_member(library: Any):
    access, store, index = library
    doc = access.delete(OWNER, DOC_ID)
    assert doc.status == DocumentStatus.DELETING
    assert index.deleted == [("acme", DOC_ID)]


# --- query_table ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        'DELETE FROM "orders" WHERE pk = ?',
        "UPDATE \"orders\" SET paid = true WHERE pk = 'a'",
        "INSERT INTO \"orders\" VALUE {'pk': 'a'}",
        'SELECT * FROM "orders"; DELETE FROM "orders" WHERE pk = ?',
        'SELECT * FROM "orders" /* ; */ ; SELECT * FROM "orders"',
        "EXISTS(SELECT * FROM \"orders\" WHERE pk = 'a')",
        '-- SELECT\nDELETE FROM "orders"',
        'SELECT * FROM "orders", "customers"',  # no second table, by any syntax
        'SELECT * FROM "orders" WHERE pk IN (SELECT pk FROM "other")',
        "",
        "SELECT 'unterminated FROM orders",
    ],
)
def test_anything_but_one_select_is_refused(registry: ToolRegistry, statement: str):
    with pytest.raises(InvalidToolArguments, match="statement"):
        registry.validate("query_table", {"statement": statement})


def test_comments_and_strings_do_not_confuse_the_parser():
    target = parse_select(
        '-- orders of one customer\nselect * /* not DELETE */ from "orders"."by_customer" '
        "where note = 'x; DELETE FROM \"orders\"' ;"
    )
    assert (target.table, target.index) == ("orders", "by_customer")
    assert parse_select("SELECT a FROM orders WHERE b = ?").table == "orders"


def test_a_table_off_the_allow_list_is_refused(registry: ToolRegistry):
    tables = FakeTables()
    with pytest.raises(DestinationNotAllowed, match="customers"):
        run(
            registry,
            "query_table",
            {"statement": 'SELECT * FROM "customers"'},
            services(tables=tables),
        )
    assert tables.calls == []


def test_a_select_over_a_table_returns_its_rows():
    with mock_aws():
        # Given an allow-listed table with rows
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="orders",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(3):
            client.put_item(
                TableName="orders",
                Item={
                    "pk": {"S": "cust#1" if i < 2 else "cust#2"},
                    "sk": {"S": f"o{i}"},
                    "tenant": {"S": "acme"},
                    "total": {"N": "9.99"},
                    "qty": {"N": str(i)},
                    "paid": {"BOOL": True},
                },
            )
        svc = services(tables=DynamoTableQuery(client))
        # When the model selects one customer's orders
        out = run(
            default_registry(),
            "query_table",
            {
                "statement": 'SELECT * FROM "orders" WHERE pk = ?',
                "parameters": ["cust#1"],
                "limit": 1,
            },
            svc,
        )
    # Then it gets them as JSON, numbers intact, cut to the limit
    payload = json.loads(out)
    assert payload["table"] == "orders" and payload["count"] == 1 and payload["more"] is True
    assert payload["rows"] == [
        {"pk": "cust#1", "sk": "o0", "tenant": "acme", "total": 9.99, "qty": 0, "paid": True}
    ]


def test_table_parameters_keep_their_types(registry: ToolRegistry):
    checked = registry.validate(
        "query_table",
        {"statement": 'SELECT * FROM "orders" WHERE a = ?', "parameters": ["x", 2, 2.5, True]},
    )
    assert isinstance(checked.args, QueryTableInput)
    assert [type(p) for p in checked.args.parameters] == [str, int, float, bool]


class RowsTables:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def select(self, statement: str, parameters: Any, limit: int) -> TableRows:
        return TableRows(rows=list(self.rows))


ROWS = [
    {"id": "1", "tenant": "acme", "title": "ours"},
    {"id": "2", "tenant": "globex", "title": "theirs"},
    {"id": "3", "title": "no tenant"},
    {"id": "4", "tenant": "acme", "acl_groups": ["hr"], "title": "hr only"},
    {"id": "5", "tenant": "acme", "acl_groups": ["legal", "hr"], "title": "legal may"},
    {"id": "6", "tenant": "acme", "acl_groups": "legal", "title": "as a string"},
]


def test_query_table_returns_only_the_callers_rows(registry: ToolRegistry):
    # Given a table holding rows of two tenants, rows without a tenant, and group-restricted rows
    out = run(
        registry,
        "query_table",
        {"statement": 'SELECT * FROM "orders"'},
        services(tables=RowsTables(ROWS)),
    )
    # Then the caller (acme, group legal) gets its own tenant's rows that its groups may read
    payload = json.loads(out)
    assert [r["id"] for r in payload["rows"]] == ["1", "5", "6"]
    assert payload["count"] == 3 and "note" not in payload


def test_a_projection_without_the_tenant_returns_nothing_and_says_why(registry: ToolRegistry):
    rows = [{"title": r["title"]} for r in ROWS]  # SELECT title FROM ...
    out = run(
        registry,
        "query_table",
        {"statement": 'SELECT title FROM "orders"'},
        services(tables=RowsTables(rows)),
    )
    payload = json.loads(out)
    assert payload["rows"] == [] and "tenant" in payload["note"]


def test_a_shared_table_is_read_whole(registry: ToolRegistry):
    svc = services(
        tables=RowsTables(ROWS),
        settings=settings(query_tables_shared=frozenset({"orders"})),
    )
    out = run(registry, "query_table", {"statement": 'SELECT * FROM "orders"'}, svc)
    assert json.loads(out)["count"] == len(ROWS)
