"""Document lifecycle seen by the API: presigned uploads, status, listing and deletes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from docket.config import Settings
from docket.errors import Forbidden, NotFound
from docket.ingest.keys import normalise_source, object_key
from docket.models import (
    DocumentRecord,
    DocumentStatus,
    DocumentView,
    Principal,
    document_id_for,
    utcnow,
)
from docket.store.ports import BlobStore, DocumentStore


class UploadSigner(Protocol):
    def presign_put(
        self, bucket: str, key: str, expires_in: int, size_bytes: int | None = None
    ) -> str:
        """A URL to PUT the object with; with ``size_bytes``, it takes exactly that many bytes
        (the length is signed)."""
        ...


class IndexCounter(Protocol):
    def count_document(self, tenant: str, document_id: str) -> int: ...

    def delete_document(self, tenant: str, document_id: str) -> int: ...

    def commit(self) -> None: ...


class S3UploadSigner:
    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url

    def presign_put(
        self, bucket: str, key: str, expires_in: int, size_bytes: int | None = None
    ) -> str:
        from docket import aws

        s3 = aws.client("s3", endpoint_url=self.endpoint_url)
        params: dict[str, object] = {"Bucket": bucket, "Key": key}
        if size_bytes is not None:
            params["ContentLength"] = size_bytes
        return str(s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in))


class DocumentService:
    def __init__(
        self,
        settings: Settings,
        documents: DocumentStore,
        blobs: BlobStore,
        signer: UploadSigner,
        index: Any = None,
        indexes: Callable[[], list[Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.documents = documents
        self.blobs = blobs
        self.signer = signer
        self._index = index
        # every generation's index, the live one first (docket.generations.live.write_indexes)
        self._indexes = indexes

    def indexes(self) -> list[Any]:
        return [self.index] if self._indexes is None else self._indexes()

    @property
    def index(self) -> IndexCounter:
        if self._indexes is not None:
            return self._indexes()[0]  # type: ignore[no-any-return]
        if self._index is None:
            from docket.search.factory import get_index

            self._index = get_index(self.settings)
        return self._index  # type: ignore[no-any-return]

    def create_upload(
        self,
        principal: Principal,
        source: str,
        acl_groups: list[str],
        size_bytes: int | None = None,
    ) -> tuple[DocumentRecord, str]:
        source = normalise_source(source)
        tenant = principal.tenant
        document_id = document_id_for(tenant, source)
        key = object_key(tenant, source)
        existing = self.documents.get(tenant, document_id)
        acl = sorted(set(acl_groups))
        foreign = sorted(set(acl) - principal.groups)
        if foreign and not _is_admin(principal):
            # else anyone could plant text that only another group's questions are answered
            # from, and which they themselves could neither see nor remove
            raise Forbidden(
                f"you can restrict a document only to groups you are in: not in {', '.join(foreign)}"
            )
        if existing is not None and self._visible(principal, existing) is None:
            # replacing a document (and its groups) takes what deleting it takes
            raise Forbidden(f"{source} exists and is restricted to groups you are not in")
        if existing is not None:
            doc = existing.model_copy(
                update={
                    "status": DocumentStatus.PENDING,
                    "acl_groups": acl,
                    "reason": None,
                    "reason_code": None,
                    "updated_at": utcnow(),
                }
            )
        else:
            doc = DocumentRecord(
                tenant=tenant, document_id=document_id, source=source, s3_key=key, acl_groups=acl
            )
        self.documents.put(doc)
        url = self.signer.presign_put(
            self.settings.documents_bucket, key, self.settings.upload_url_ttl_seconds, size_bytes
        )
        return doc, url

    def get(self, principal: Principal, document_id: str) -> DocumentRecord:
        doc = self.documents.get(principal.tenant, document_id)
        if doc is not None and self._visible(principal, doc) is None:
            raise NotFound(f"document {document_id} not found")
        if doc is None:
            # Gone from the table; chunks may still be leaving the index.
            if self.index.count_document(principal.tenant, document_id) > 0:
                return DocumentRecord(
                    tenant=principal.tenant,
                    document_id=document_id,
                    source="(deleted)",
                    status=DocumentStatus.DELETING,
                )
            raise NotFound(f"document {document_id} not found")
        return doc

    def view(self, principal: Principal, document_id: str) -> DocumentView:
        """``get``, with the chunks indexed so far while the document is pending."""
        doc = self.get(principal, document_id)
        indexed = None
        if doc.status == DocumentStatus.PENDING and doc.chunk_count:
            indexed = self.index.count_document(doc.tenant, doc.document_id)
        return DocumentView(**doc.model_dump(), indexed_chunks=indexed)

    def list(self, principal: Principal) -> list[DocumentRecord]:
        visible = (d for d in self.documents.list(principal.tenant) if self._visible(principal, d))
        return sorted(visible, key=lambda d: d.source)

    @staticmethod
    def _visible(principal: Principal, doc: DocumentRecord | None) -> DocumentRecord | None:
        """The query path's ACL rule, for every document route: a document with ACL groups
        exists, for a caller, only when they are in one of them (listing, reading, replacing
        and deleting alike; outside them it is 404, as another tenant's document is). A record
        holds no content, but its source name and title can say as much as the text."""
        if doc is None or not doc.acl_groups or principal.groups & set(doc.acl_groups):
            return doc
        return None

    def delete(self, principal: Principal, document_id: str) -> DocumentRecord:
        doc = self._visible(principal, self.documents.get(principal.tenant, document_id))
        if doc is None:
            raise NotFound(f"document {document_id} not found")
        self.documents.update(principal.tenant, document_id, status=DocumentStatus.DELETING)
        # Leave the index at once, so no query can return a chunk of a deleted document; the
        # S3 delete then removes the item and its chunks through the pipeline.
        for index in self.indexes():
            index.delete_document(principal.tenant, document_id)
            index.commit()
        key = doc.s3_key or object_key(doc.tenant, doc.source)
        if self.blobs.head(self.settings.documents_bucket, key) is not None:
            self.blobs.delete(self.settings.documents_bucket, key)
        else:
            self.documents.delete(principal.tenant, document_id)
        return doc.model_copy(update={"status": DocumentStatus.DELETING})


def _is_admin(principal: Principal) -> bool:
    from docket.auth import is_admin

    return is_admin(principal)
