"""The local AWS endpoint's signature check, against requests signed by botocore itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from docket.local.sigv4 import SignatureError, local_credentials, verify

KEY, SECRET = "DOCKETLOCALTEST", "s3cr3t"
ENDPOINT = "http://127.0.0.1:9001"


def signed(method: str, url: str, body: bytes = b"", *, service: str = "s3", **headers: str):
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    auth = S3SigV4Auth if service == "s3" else SigV4Auth
    auth(Credentials(KEY, SECRET), service, "us-east-1").add_auth(request)
    return request


def presigned(method: str, url: str, expires: int = 300) -> str:
    request = AWSRequest(method=method, url=url)
    S3SigV4QueryAuth(Credentials(KEY, SECRET), "s3", "us-east-1", expires=expires).add_auth(request)
    return str(request.url)


def check(method: str, url: str, headers: dict[str, str], body: bytes = b"", **kw) -> None:
    parts = urlsplit(url)
    lowered = {k.lower(): str(v) for k, v in headers.items()}
    lowered.setdefault("host", parts.netloc)
    verify(method, parts.path, parts.query, lowered, lambda: body, {KEY: SECRET}, **kw)


def test_header_signed_s3_and_dynamodb_requests_pass() -> None:
    r = signed("GET", f"{ENDPOINT}/docket-documents?list-type=2&prefix=tenants%2Facme%2F")
    check("GET", r.url, dict(r.headers))
    body = b'{"TableName": "tickets"}'
    r = signed(
        "POST",
        f"{ENDPOINT}/",
        body,
        service="dynamodb",
        **{"X-Amz-Target": "DynamoDB_20120810.DescribeTable"},
    )
    check("POST", r.url, dict(r.headers), body)


def test_unsigned_and_foreign_key_requests_are_refused() -> None:
    with pytest.raises(SignatureError, match="not signed"):
        check("GET", f"{ENDPOINT}/docket-documents", {})
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/docket-documents")
    S3SigV4Auth(Credentials("SOMEONEELSE", SECRET), "s3", "us-east-1").add_auth(request)
    with pytest.raises(SignatureError) as caught:
        check("GET", request.url, dict(request.headers))
    assert caught.value.code == "InvalidAccessKeyId"


@pytest.mark.parametrize(
    "tamper",
    ["path", "query", "method", "header", "body"],
)
def test_any_change_to_a_signed_request_is_refused(tamper: str) -> None:
    body = b"the signed body"
    r = signed("PUT", f"{ENDPOINT}/docket-documents/tenants/acme/a.txt?x-id=PutObject", body)
    method, url, headers = "PUT", r.url, dict(r.headers)
    if tamper == "path":
        url = url.replace("tenants/acme/", "tenants/globex/")
    elif tamper == "query":
        url = url.replace("x-id=PutObject", "x-id=DeleteObject")
    elif tamper == "method":
        method = "DELETE"
    elif tamper == "header":
        headers["X-Amz-Date"] = (datetime.now(UTC) - timedelta(minutes=1)).strftime(
            "%Y%m%dT%H%M%SZ"
        )
    else:
        body = b"a planted body"
    with pytest.raises(SignatureError):
        check(method, url, headers, body)


def test_presigned_put_is_valid_only_for_its_key_method_and_time() -> None:
    url = presigned("PUT", f"{ENDPOINT}/docket-documents/tenants/acme/report.pdf")
    check("PUT", url, {}, b"any bytes: the payload is unsigned")
    with pytest.raises(SignatureError, match="does not match"):
        check("PUT", url.replace("tenants/acme/", "tenants/globex/"), {})
    with pytest.raises(SignatureError, match="does not match"):
        check("GET", url, {})
    with pytest.raises(SignatureError, match="expired"):
        check("PUT", url, {}, now=datetime.now(UTC) + timedelta(seconds=301))


def test_local_credentials_are_made_once_and_private(tmp_path) -> None:
    first = local_credentials(tmp_path)
    assert local_credentials(tmp_path) == first and first[1] != "testing"
    assert (tmp_path / "credentials.json").stat().st_mode & 0o077 == 0
    assert local_credentials(tmp_path / "other") != first
