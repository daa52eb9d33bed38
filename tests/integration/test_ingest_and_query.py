"""Upload → S3 notification → SQS → extract → Documents stream → chunk → Chunks stream → embed →
index, then POST /query, all through the local cloud with real event shapes and HTTP."""

from __future__ import annotations

import httpx
import pytest

from docket.local.cloud import LocalCloud
from tests.builders import build_pdf

from .conftest import Api

pytestmark = pytest.mark.integration

HANDBOOK = """# Travel policy

## Flights

Employees book economy class for flights shorter than six hours. Business class is allowed for
flights longer than six hours when a director approves it in advance.

## Hotels

Hotel stays are reimbursed up to 180 euros per night in Paris and 140 euros elsewhere in France.
Receipts must be uploaded within thirty days.
"""


def embed_calls(cloud: LocalCloud) -> int:
    assert cloud.runtime is not None
    return cloud.runtime.stats["docket-embed"].invocations


def test_upload_through_presigned_url_is_indexed_and_answerable(
    api: Api, cloud: LocalCloud
) -> None:
    # Given a Markdown policy uploaded through POST /documents and its presigned URL
    doc_id = api.upload("policies/travel.md", HANDBOOK.encode())
    # When the pipeline has run
    doc = api.wait_status(doc_id)
    # Then the document is indexed with its counts, hash and model
    assert doc["status"] == "indexed", doc
    assert doc["chunk_count"] >= 1
    assert doc["content_hash"].startswith("sha256:")
    assert doc["embedding_model"].startswith("sentence-transformers/all-MiniLM-L6-v2@")
    # And a question is answered with citations to the exact chunk
    body = api.ask("How much is reimbursed for a hotel night in Paris?")
    assert body["found"] is True
    assert "180 euros" in body["answer"]
    cite = body["citations"][0]
    assert cite["document_id"] == doc_id and cite["source"] == "policies/travel.md"
    assert cite["page_start"] == cite["page_end"] == 1
    cited = next(c for c in body["chunks"] if c["chunk_id"] == cite["chunk_id"])
    assert cite["quote"] and cite["quote"] in cited["text"]
    assert {"embed", "bm25", "knn", "fuse", "answer", "total"} <= set(body["timings_ms"])
    assert all("score" in c for c in body["chunks"])


def test_direct_s3_upload_is_event_driven(api: Api, cloud: LocalCloud) -> None:
    from docket import aws

    # Given a file put straight into the bucket (no API call), with ACL groups as object metadata
    aws.client("s3").put_object(
        Bucket="docket-documents",
        Key="tenants/acme/kb/espresso machine.txt",
        Body=b"The espresso machine on floor 3 is descaled every Friday by the facilities team.",
        Metadata={"acl-groups": "facilities"},
    )
    cloud.wait_idle(60)
    # Then it was processed through the notification and streams, and its ACL applies
    outside = api.call("GET", "/documents").json()["documents"]
    assert all(d["source"] != "kb/espresso machine.txt" for d in outside)  # not in its group
    docs = api.call("GET", "/documents", groups=("facilities",)).json()["documents"]
    doc = next(d for d in docs if d["source"] == "kb/espresso machine.txt")
    assert doc["status"] == "indexed" and doc["acl_groups"] == ["facilities"]
    # only a member of one of its groups may delete it
    assert (
        api.call("DELETE", f"/documents/{doc['document_id']}", groups=("sales",)).status_code == 404
    )
    # nor replace it (and its groups) by uploading the same source again
    again = {"source": "kb/espresso machine.txt", "acl_groups": []}
    assert api.call("POST", "/documents", groups=("sales",), json=again).status_code == 403
    assert api.ask("When is the espresso machine descaled?", groups=("facilities",))["found"]
    hidden = api.ask("When is the espresso machine descaled?", groups=("sales",))
    assert all(c["document_id"] != doc["document_id"] for c in hidden["chunks"])


def test_pdf_pages_are_carried_to_citations(api: Api) -> None:
    pdf = build_pdf(
        [
            "Annual report. Chapter one describes the company history since 1998.",
            "Chapter two. The Lisbon office opened in March 2021 with forty engineers.",
            "Chapter three. Revenue guidance for next year is flat.",
        ],
        title="Annual report",
    )
    doc_id = api.upload("reports/annual.pdf", pdf)
    assert api.wait_status(doc_id)["status"] == "indexed"
    body = api.ask("When did the Lisbon office open?", top_k=5)
    cite = next(c for c in body["citations"] if c["document_id"] == doc_id)
    assert cite["page_start"] <= 2 <= cite["page_end"]
    assert "Lisbon" in cite["quote"]


def test_unchanged_reupload_does_no_work_and_changed_reembeds_only_changes(
    api: Api, cloud: LocalCloud
) -> None:
    sections = [
        f"## Section {i}\n\n" + f"Paragraph {i} talks about topic number {i}. " * 40
        for i in range(6)
    ]
    text = "# Manual\n\n" + "\n\n".join(sections)
    doc_id = api.upload("manuals/long.md", text.encode())
    first = api.wait_status(doc_id)
    assert first["status"] == "indexed" and first["chunk_count"] >= 6
    chunks_before = {c["chunk_id"] for c in _all_chunks(api, doc_id)}

    # When the same bytes are uploaded again: no new embedding work at all
    calls = embed_calls(cloud)
    api.upload("manuals/long.md", text.encode())
    cloud.wait_idle(60)
    again = api.wait_status(doc_id)
    assert again["status"] == "indexed" and again["content_hash"] == first["content_hash"]
    assert embed_calls(cloud) == calls

    # When one section changes: only its chunks are new, the others keep their ids
    changed = text.replace(
        "Paragraph 3 talks about topic number 3.", "Paragraph 3 now covers a replacement topic."
    )
    from docket.embedding.factory import get_embedder

    embedder = get_embedder()
    seen: list[str] = []
    original = embedder.embed_documents

    def spy(texts):  # type: ignore[no-untyped-def]
        seen.extend(texts)
        return original(texts)

    embedder.embed_documents = spy  # type: ignore[method-assign]
    try:
        api.upload("manuals/long.md", changed.encode())
        cloud.wait_idle(60)
        final = api.wait_status(doc_id)
    finally:
        embedder.embed_documents = original  # type: ignore[method-assign]
    assert final["status"] == "indexed" and final["content_hash"] != first["content_hash"]
    chunks_after = {c["chunk_id"] for c in _all_chunks(api, doc_id)}
    new_ids = chunks_after - chunks_before
    assert new_ids and len(new_ids) < len(chunks_after) / 2
    assert len(seen) == len(new_ids)
    assert all("replacement topic" in t or "Section 3" in t for t in seen)


def _all_chunks(api: Api, doc_id: str) -> list[dict]:
    from docket.store.dynamodb import DynamoChunkStore

    return [
        c.model_dump() for c in DynamoChunkStore("docket-chunks").list_for_document("acme", doc_id)
    ]


def test_delete_through_api_removes_chunks_from_index_and_tables(
    api: Api, cloud: LocalCloud
) -> None:
    doc_id = api.upload(
        "tmp/secret.txt", b"The vault combination is 12-34-56, changed every quarter."
    )
    assert api.wait_status(doc_id)["status"] == "indexed"
    assert any(c["document_id"] == doc_id for c in api.ask("vault combination")["chunks"])
    # When it is deleted
    resp = api.call("DELETE", f"/documents/{doc_id}")
    assert resp.status_code == 202
    # Then no query returns it, at once
    assert all(c["document_id"] != doc_id for c in api.ask("vault combination")["chunks"])
    cloud.wait_idle(60)
    assert api.call("GET", f"/documents/{doc_id}").status_code == 404
    assert _all_chunks(api, doc_id) == []


def test_delete_through_s3_removes_document(api: Api, cloud: LocalCloud) -> None:
    from docket import aws
    from docket.config import get_settings
    from docket.search.factory import get_index

    doc_id = api.upload(
        "tmp/s3-delete.txt", b"Penguins huddle together to survive the Antarctic winter."
    )
    assert api.wait_status(doc_id)["status"] == "indexed"
    aws.client("s3").delete_object(Bucket="docket-documents", Key="tenants/acme/tmp/s3-delete.txt")
    cloud.wait_idle(60)
    assert api.call("GET", f"/documents/{doc_id}").status_code == 404
    assert get_index(get_settings()).count_document("acme", doc_id) == 0
    assert all(c["document_id"] != doc_id for c in api.ask("penguins antarctic winter")["chunks"])


def test_tenants_and_groups_are_isolated(api: Api) -> None:
    secret = api.upload(
        "hr/salaries.txt", b"The salary band for staff engineers is 95k to 120k.", acl=["hr"]
    )
    other = api.upload("notes.txt", b"Globex salary bands are confidential.", tenant="globex")
    assert api.wait_status(secret)["status"] == "indexed"
    assert api.wait_status(other, tenant="globex")["status"] == "indexed"
    # Another tenant can neither see the document nor retrieve its chunks (404, not 403)
    assert api.call("GET", f"/documents/{secret}", tenant="globex").status_code == 404
    assert api.call("DELETE", f"/documents/{secret}", tenant="globex").status_code == 404
    body = api.ask("salary band staff engineers", tenant="globex", groups=("hr",))
    assert all(c["document_id"] != secret for c in body["chunks"])
    # Inside the tenant, only the hr group sees it
    assert all(c["document_id"] != secret for c in api.ask("salary band staff engineers")["chunks"])
    assert any(
        c["document_id"] == secret
        for c in api.ask("salary band staff engineers", groups=("hr",))["chunks"]
    )
    # The tenant in a request body is ignored: it comes only from the token
    resp = api.call("POST", "/query", "globex", json={"question": "salary band", "tenant": "acme"})
    assert all(c["document_id"] != secret for c in resp.json()["chunks"])


def test_auth_and_malformed_requests(api: Api) -> None:
    q = {"question": "anything"}
    assert httpx.post(f"{api.url}/query", json=q).status_code == 401
    assert (
        httpx.post(
            f"{api.url}/query", json=q, headers={"authorization": "Bearer forged.token.value"}
        ).status_code
        == 401
    )
    from docket.auth import issue_token
    from docket.config import Settings

    wrong_key = issue_token(
        Settings(dev_token_secret="another-secret-of-at-least-32-bytes!"),
        subject="x",
        tenant="acme",
    )
    assert (
        httpx.post(
            f"{api.url}/query", json=q, headers={"authorization": f"Bearer {wrong_key}"}
        ).status_code
        == 401
    )
    bad_json = api.call(
        "POST", "/query", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code in (400, 422) and "json" in bad_json.text.lower()
    assert api.call("POST", "/query", json={"top_k": 3}).status_code == 422
    assert api.call("POST", "/query", json={"question": "x", "top_k": 0}).status_code == 422
    assert api.call("POST", "/documents", json={"source": "../etc/passwd"}).status_code == 400
    assert api.call("GET", "/documents/not-an-id").status_code == 422
    assert api.call("GET", "/documents/doc_000000000000000000000000").status_code == 404
    too_big = api.call("POST", "/documents", json={"source": "big.bin", "size_bytes": 10**10})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "file_too_large"


def test_openapi_document_is_served(api: Api) -> None:
    spec = httpx.get(f"{api.url}/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/documents", "/documents/{document_id}", "/query"} <= set(spec["paths"])
    assert "QueryResponse" in spec["components"]["schemas"]


def test_query_refused_when_index_model_differs(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from docket.embedding.hashing import HashingEmbedder
    from docket.query import get_query_service

    service = get_query_service()
    monkeypatch.setattr(service.retriever, "embedder", HashingEmbedder())
    resp = api.call("POST", "/query", json={"question": "hotel night in Paris"})
    assert resp.status_code == 409
    err = resp.json()["error"]
    assert err["code"] == "embedding_model_mismatch" and "docket/hashing" in err["message"]


def _raw(api: Api, request: bytes) -> bytes:
    """One raw HTTP/1.1 exchange with the local gateway (what httpx would refuse to send)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(api.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_the_gateway_answers_odd_requests_in_json(api: Api) -> None:
    # a malformed Content-Length: 400, not a dropped connection
    reply = _raw(api, b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}")
    assert reply.startswith(b"HTTP/1.0 400") or reply.startswith(b"HTTP/1.1 400")
    assert b"Content-Length" in reply and b"application/json" in reply
    # HEAD is GET without a body
    head = api.http.head("/health")
    assert head.status_code == 200 and head.content == b""
    # TRACE is not allowed, in JSON rather than an HTML page
    trace = api.http.request("TRACE", "/health")
    assert trace.status_code == 405 and trace.json()["message"] == "Method Not Allowed"
    assert "GET" in trace.headers["allow"]
    # a development token's groups must be a list of names, not a string read letter by letter
    bad = api.http.post("/_local/token", json={"tenant": "acme", "groups": "abc"})
    assert bad.status_code == 400
    good = api.http.post("/_local/token", json={"tenant": "acme", "groups": ["abc"]})
    assert good.status_code == 200 and good.json()["groups"] == ["abc"]
