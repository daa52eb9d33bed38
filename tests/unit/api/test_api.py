"""API routes with fakes behind them: claims → principal, validation, and error mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest

from docket.api import app as api_module
from docket.config import Settings
from docket.documents import DocumentService
from docket.errors import Forbidden, ModelMismatch, NotFound
from docket.models import DocumentStatus, Principal, document_id_for
from tests.utils import load_event

from ..fakes import FakeBlobStore, FakeDocumentStore, FakeEmbedder, FakeIndex


class Signer:
    def presign_put(
        self, bucket: str, key: str, expires_in: int, size_bytes: int | None = None
    ) -> str:
        return f"https://s3.example.com/{bucket}/{key}?X-Amz-Expires={expires_in}"


class Context:
    function_name = "docket-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:docket-api"
    aws_request_id = "req"


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch):
    docs, blobs = FakeDocumentStore(), FakeBlobStore()
    index = FakeIndex(FakeEmbedder().model)
    service = DocumentService(Settings(), docs, blobs, Signer(), index=index)
    monkeypatch.setattr(api_module, "documents", lambda: service)
    return docs, blobs, index


def call(event: dict[str, Any]) -> tuple[int, Any]:
    result = api_module.app.resolve(event, Context())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else None


def test_create_document_uses_tenant_from_claims_and_presigns_tenant_key(services) -> None:
    docs, _, _ = services
    status, body = call(load_event("apigw_create_document"))
    assert status == 201
    assert body["key"] == "tenants/acme/reports/q3 summary.txt"
    assert body["upload_url"].startswith("https://s3.example.com/docket-documents/tenants/acme/")
    assert body["document_id"] == document_id_for("acme", "reports/q3 summary.txt")
    stored = docs.get("acme", body["document_id"])
    assert stored.status == DocumentStatus.PENDING and stored.acl_groups == ["staff"]


def test_missing_claims_is_401(services) -> None:
    event = load_event("apigw_create_document")
    del event["requestContext"]["authorizer"]
    status, body = call(event)
    assert status == 401 and body["error"]["code"] == "unauthorized"


def test_other_tenant_gets_404_not_403(services) -> None:
    docs, _, _ = services
    call(load_event("apigw_create_document"))
    event = load_event("apigw_get_document")
    event["rawPath"] = event["requestContext"]["http"]["path"] = (
        f"/documents/{document_id_for('acme', 'reports/q3 summary.txt')}"
    )
    assert call(event)[0] == 200
    event["requestContext"]["authorizer"]["jwt"]["claims"]["tenant"] = "globex"
    status, body = call(event)
    assert status == 404 and body["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "body,status",
    [
        ({"source": ""}, 422),
        ({"source": "a.txt", "acl_groups": ["bad group!"]}, 422),
        ({"source": "../../etc/passwd"}, 400),
        ({"source": "a.txt", "size_bytes": 10**12}, 413),
    ],
)
def test_create_document_rejects_bad_bodies(services, body: dict, status: int) -> None:
    event = load_event("apigw_create_document")
    event["body"] = json.dumps(body)
    assert call(event)[0] == status


def test_invalid_json_is_400(services) -> None:
    event = load_event("apigw_create_document")
    event["body"] = "{not json"
    status, body = call(event)
    assert status in (400, 422)


def test_delete_removes_from_index_then_object(services) -> None:
    docs, blobs, index = services
    call(load_event("apigw_create_document"))
    doc_id = document_id_for("acme", "reports/q3 summary.txt")
    blobs.put("docket-documents", "tenants/acme/reports/q3 summary.txt", b"x")
    event = load_event("apigw_delete_document")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/documents/{doc_id}"
    status, body = call(event)
    assert status == 202 and body["status"] == "deleting"
    assert blobs.head("docket-documents", "tenants/acme/reports/q3 summary.txt") is None
    assert index.commits == 1


class FailingQueries:
    def ask(self, principal: Principal, request: Any) -> Any:
        raise ModelMismatch("index holds a@1, query embedder is b@2")


def test_model_mismatch_is_409(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_module, "queries", lambda: FailingQueries())
    status, body = call(load_event("apigw_query"))
    assert status == 409 and body["error"]["code"] == "embedding_model_mismatch"


def test_groups_claim_in_api_gateway_string_form_is_parsed() -> None:
    from docket.auth import principal_from_event

    p = principal_from_event(load_event("apigw_query"))
    assert p.tenant == "acme" and p.groups == frozenset({"staff", "legal"})


def test_group_restricted_documents_exist_only_for_their_groups(services) -> None:
    docs, blobs, index = services
    service = api_module.documents()
    finance = Principal(subject="fin", tenant="acme", groups=frozenset({"finance"}))
    staff = Principal(subject="emp", tenant="acme", groups=frozenset({"staff"}))
    # Given a document restricted to finance and one open to the whole tenant
    secret, _ = service.create_upload(finance, "layoffs-2027.pdf", ["finance"])
    open_doc, _ = service.create_upload(staff, "handbook.pdf", [])
    # Then finance sees both, staff only the open one, through every route
    assert [d.source for d in service.list(finance)] == ["handbook.pdf", "layoffs-2027.pdf"]
    assert [d.source for d in service.list(staff)] == ["handbook.pdf"]
    assert service.get(finance, secret.document_id).source == "layoffs-2027.pdf"
    assert service.get(staff, open_doc.document_id).source == "handbook.pdf"
    for action in (service.get, service.delete):
        with pytest.raises(NotFound):
            action(staff, secret.document_id)
    with pytest.raises(Forbidden):
        service.create_upload(staff, "layoffs-2027.pdf", [])  # replacing it takes the group
    assert docs.get("acme", secret.document_id).status == DocumentStatus.PENDING  # untouched


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_a_body_nested_too_deep_is_400_not_500(services, opener: str) -> None:
    event = load_event("apigw_query")
    closer = "]" if opener == "[" else "}"
    event["body"] = opener * 100_000 + "1" + closer * 100_000
    status, body = call(event)
    assert status == 400 and body["error"]["code"] == "invalid_json"


def test_a_pending_document_shows_how_many_of_its_chunks_are_indexed(services) -> None:
    """What ``docket ingest`` shows as progress on a long file."""
    from docket.models import ChunkRecord

    docs, _, index = services
    _, created = call(load_event("apigw_create_document"))
    document_id = created["document_id"]
    docs.update("acme", document_id, chunk_count=3)
    chunk = ChunkRecord(
        tenant="acme",
        document_id=document_id,
        chunk_id="chk_" + "1" * 32,
        ordinal=0,
        text="one",
        page_start=1,
        page_end=1,
        source="reports/q3 summary.txt",
        token_count=1,
    )
    index.upsert([chunk], FakeEmbedder().embed_documents(["one"]))
    event = load_event("apigw_get_document")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/documents/{document_id}"
    status, body = call(event)
    assert status == 200 and body["status"] == "pending"
    assert (body["chunk_count"], body["indexed_chunks"]) == (3, 1)
    # once indexed, the record speaks for itself
    docs.update("acme", document_id, status=DocumentStatus.INDEXED)
    assert call(event)[1]["indexed_chunks"] is None


def test_errors_have_one_shape_and_the_schema_declares_them(services) -> None:
    # 422: the schema's refusal, in the error shape, every field named
    event = load_event("apigw_create_document")
    event["body"] = json.dumps({"source": "a.txt", "size_bytes": True, "acl_groups": ["x y"]})
    status, body = call(event)
    assert status == 422 and body["error"]["code"] == "invalid_request"
    assert {tuple(d["loc"]) for d in body["error"]["details"]} == {
        ("body", "size_bytes"),
        ("body", "acl_groups", 0),
    }
    # 405 with Allow for a path routed under other methods; 404 for no route at all
    event = load_event("apigw_create_document")
    event["requestContext"]["http"]["method"] = "PUT"
    result = api_module.app.resolve(event, Context())
    assert result["statusCode"] == 405
    assert result["headers"]["Allow"] == "GET, HEAD, POST"
    # 415 for a multipart body (no route reads one), before any parsing
    event = load_event("apigw_create_document")
    event["headers"]["content-type"] = "multipart/form-data"
    assert api_module.resolve(event, Context())["statusCode"] == 415
    # and the served document declares what the routes answer
    event = load_event("apigw_create_document")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/openapi.json"
    event["requestContext"]["http"]["method"] = "GET"
    event.pop("body", None)
    status, spec = call(event)
    responses = spec["paths"]["/documents"]["post"]["responses"]
    assert {"201", "400", "401", "403", "409", "413", "422", "503"} <= set(responses)
    assert "200" not in responses
    assert responses["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


def test_a_document_can_be_restricted_only_to_the_caller_s_groups(services) -> None:
    """Otherwise anyone could plant text only another group's answers are drawn from."""
    event = load_event("apigw_create_document")
    event["body"] = json.dumps({"source": "plant.txt", "acl_groups": ["finance"]})
    status, body = call(event)
    assert status == 403 and "finance" in body["error"]["message"]
