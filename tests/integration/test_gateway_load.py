"""The local gateway under many clients at once: every connection is served (socketserver's
default backlog of 5 reset some of them when thirty clients connected together)."""

from __future__ import annotations

import threading

import httpx
import pytest

from .conftest import Api

pytestmark = pytest.mark.integration


def test_two_hundred_clients_connecting_at_once_are_all_answered(api: Api) -> None:
    clients = 200
    barrier = threading.Barrier(clients)
    outcomes: list[object] = []
    lock = threading.Lock()
    token = api.token("acme")

    def client() -> None:
        with httpx.Client(base_url=api.url, timeout=30) as http:
            barrier.wait()
            try:
                for _ in range(3):
                    resp = http.get("/documents", headers={"authorization": f"Bearer {token}"})
                    outcome: object = resp.status_code
            except httpx.HTTPError as exc:
                outcome = repr(exc)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [200] * clients
