"""The re-embedding job's SageMaker container contract over HTTP (docket/embedding/batch_job.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from docket.embedding import batch_job
from docket.embedding.batch_job import make_server, read_output_line
from docket.embedding.hashing import HashingEmbedder
from tests.unit.embedding.test_batch_job import TEXTS, lines

pytestmark = pytest.mark.integration


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def server(embedder) -> Iterator[str]:  # type: ignore[no-untyped-def]
    srv = make_server(embedder, host="127.0.0.1", port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_the_container_contract(server: str, embedder, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server, timeout=30) as http:
        assert http.get("/ping").status_code == 200
        assert http.get("/other").status_code == 404
        # a MultiRecord request: whole lines in, one line out per line, in order
        resp = http.post("/invocations", content=lines("c", 5))
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/jsonlines"
        out = [read_output_line(x) for x in resp.text.splitlines()]
        assert [cid for cid, _ in out] == [f"c{i}" for i in range(5)]
        np.testing.assert_allclose(out[4][1], embedder.embed_query(TEXTS[4]), rtol=1e-6)
        # a malformed line: 400 naming it; nothing embedded
        bad = http.post("/invocations", content=lines("c", 2) + "{broken\n")
        assert bad.status_code == 400
        assert "line 3" in bad.json()["error"]
        # an oversized body: 413 before reading it
        monkeypatch.setattr(batch_job, "MAX_REQUEST_BYTES", 10)
        assert http.post("/invocations", content=lines("c", 2)).status_code == 413
