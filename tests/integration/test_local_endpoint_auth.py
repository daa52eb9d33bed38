"""The local AWS endpoint (port+1) refuses what AWS would: unsigned requests, presigned URLs used
for another key, and moto's control API; signed requests with the data directory's key work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from docket.local.cloud import LocalCloud

from .conftest import Api, running_cloud

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Api]]:
    with running_cloud(tmp_path_factory.mktemp("endpoint")) as running:
        yield running


def send(request: AWSRequest) -> httpx.Response:
    return httpx.request(
        request.method, request.url, headers=dict(request.headers), content=request.body
    )


def signed(cloud: LocalCloud, method: str, path: str, body: bytes = b"", **headers: str):
    request = AWSRequest(
        method=method, url=f"{cloud.s3_endpoint}{path}", data=body, headers=headers
    )
    service = "s3" if "X-Amz-Target" not in headers else "dynamodb"
    auth = S3SigV4Auth if service == "s3" else SigV4Auth
    auth(Credentials(*cloud.credentials), service, cloud.region).add_auth(request)
    return request


def test_unsigned_requests_cannot_list_or_plant(local: tuple[LocalCloud, Api]) -> None:
    cloud, api = local
    api.upload("secret/plan.txt", b"acme's plan", tenant="acme")
    listing = httpx.get(f"{cloud.s3_endpoint}/docket-documents?list-type=2")
    assert listing.status_code == 403 and b"acme" not in listing.content
    planted = httpx.put(
        f"{cloud.s3_endpoint}/docket-documents/tenants/globex/planted.txt", content=b"x"
    )
    assert planted.status_code == 403
    assert b"<Code>AccessDenied</Code>" in planted.content
    assert (
        send(signed(cloud, "HEAD", "/docket-documents/tenants/globex/planted.txt")).status_code
        == 404
    )
    assert httpx.post(f"{cloud.s3_endpoint}/moto-api/reset").status_code == 403


def test_presigned_upload_url_works_only_for_its_key(local: tuple[LocalCloud, Api]) -> None:
    cloud, api = local
    resp = api.call("POST", "/documents", "acme", json={"source": "notes/own.txt"})
    url = resp.json()["upload_url"]
    swapped = url.replace("tenants/acme/notes/own.txt", "tenants/globex/notes/own.txt")
    assert httpx.put(swapped, content=b"planted").status_code == 403
    assert httpx.get(url).status_code == 403  # a PUT URL does not read
    assert httpx.put(url, content=b"own words").status_code == 200


def test_signed_requests_with_the_local_key_reach_s3_and_dynamodb(
    local: tuple[LocalCloud, Api],
) -> None:
    cloud, _ = local
    listing = send(signed(cloud, "GET", "/docket-documents?list-type=2"))
    assert listing.status_code == 200 and b"ListBucketResult" in listing.content
    body = b'{"TableName": "docket-documents"}'
    described = send(
        signed(
            cloud,
            "POST",
            "/",
            body,
            **{
                "X-Amz-Target": "DynamoDB_20120810.DescribeTable",
                "Content-Type": "application/x-amz-json-1.0",
            },
        )
    )
    assert described.status_code == 200 and described.json()["Table"]["TableName"]
    wrong = AWSRequest(method="GET", url=f"{cloud.s3_endpoint}/docket-documents?list-type=2")
    S3SigV4Auth(Credentials(cloud.credentials[0], "guess"), "s3", cloud.region).add_auth(wrong)
    assert send(wrong).status_code == 403


def test_the_key_is_the_data_directory_s_own(local: tuple[LocalCloud, Api]) -> None:
    cloud, _ = local
    stored = Path(cloud.data_dir / "credentials.json")
    assert stored.exists() and stored.stat().st_mode & 0o077 == 0
    assert cloud.credentials[1] not in {"testing", ""}
