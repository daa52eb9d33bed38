"""Integration fixtures: a real local cloud (moto + in-process Lambdas + embedded index) with its
HTTP gateway, driven through real event shapes and HTTP."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from docket.local.cloud import LocalCloud
from docket.local.gateway import Gateway

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    """A small HTTP client of the local API, with a development token per (tenant, groups)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=60)
        self._tokens: dict[tuple[str, tuple[str, ...], str | None], str] = {}
        self._groups_of: dict[str, tuple[str, ...]] = {}

    def token(self, tenant: str, groups: tuple[str, ...] = (), subject: str | None = None) -> str:
        key = (tenant, tuple(sorted(groups)), subject)
        if key not in self._tokens:
            claims: dict[str, Any] = {"tenant": tenant, "groups": list(groups)}
            if subject:
                claims["subject"] = subject
            resp = self.http.post("/_local/token", json=claims)
            resp.raise_for_status()
            self._tokens[key] = resp.json()["token"]
        return self._tokens[key]

    def call(
        self,
        method: str,
        path: str,
        tenant: str = "acme",
        groups: tuple[str, ...] = (),
        subject: str | None = None,
        **kw: Any,
    ) -> httpx.Response:
        token = self.token(tenant, groups, subject)
        headers = {"authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kw)

    def upload(
        self, source: str, data: bytes, tenant: str = "acme", acl: list[str] | None = None
    ) -> str:
        # as a member of the groups it is restricted to (only they may restrict it so)
        resp = self.call(
            "POST",
            "/documents",
            tenant,
            tuple(acl or ()),
            json={"source": source, "acl_groups": acl or [], "size_bytes": len(data)},
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        put = httpx.put(body["upload_url"], content=data)
        assert put.status_code == 200, put.text
        # a restricted document exists only for its groups: follow it as one of them
        self._groups_of[str(body["document_id"])] = tuple(acl or ())
        return str(body["document_id"])

    def wait_status(
        self, document_id: str, tenant: str = "acme", timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            groups = self._groups_of.get(document_id, ())
            resp = self.call("GET", f"/documents/{document_id}", tenant, groups)
            if resp.status_code == 200 and resp.json()["status"] in ("indexed", "failed"):
                return resp.json()
            time.sleep(0.1)
        raise TimeoutError(f"{document_id} not processed within {timeout}s")

    def ask(
        self, question: str, tenant: str = "acme", groups: tuple[str, ...] = (), **body: Any
    ) -> dict[str, Any]:
        resp = self.call("POST", "/query", tenant, groups, json={"question": question, **body})
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]


def start_cloud(data_dir: Path, env: dict[str, str] | None = None) -> tuple[LocalCloud, Gateway]:
    cloud = LocalCloud(data_dir, env=env).start(s3_port=free_port())
    gateway = Gateway(cloud, port=free_port()).start()
    return cloud, gateway


@contextmanager
def running_cloud(
    data_dir: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[LocalCloud, Api]]:
    """A local cloud with its gateway and an API client, stopped on the way out."""
    cloud, gateway = start_cloud(data_dir, env)
    try:
        yield cloud, Api(gateway.url)
    finally:
        gateway.stop()
        cloud.stop()


@pytest.fixture(scope="module")
def cloud_and_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Api]]:
    with running_cloud(
        tmp_path_factory.mktemp("cloud"), env={"DOCKET_MAX_FILE_BYTES": str(2 * 1024 * 1024)}
    ) as running:
        yield running


@pytest.fixture(scope="module")
def cloud(cloud_and_api: tuple[LocalCloud, Api]) -> LocalCloud:
    return cloud_and_api[0]


@pytest.fixture(scope="module")
def api(cloud_and_api: tuple[LocalCloud, Api]) -> Api:
    return cloud_and_api[1]
