"""A whole rebuild (P6) through state_machines/reembed.asl.json on the local cloud: fp32 → int8
with writes and deletes while it runs, the gate's figures, rollback, and the ways a build fails
(a second rebuild, a gate with nothing to measure, a job that fails) leaving live untouched."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from docket.local.cloud import LocalCloud

from .conftest import Api, running_cloud

pytestmark = pytest.mark.integration

DOCS = {
    "tides.txt": "Tides are caused by the gravitational pull of the Moon and the Sun on the oceans.",
    "bread.txt": "Sourdough bread rises because wild yeast and lactic bacteria ferment the dough.",
    "volcano.txt": "A volcano erupts when magma rises through the crust and escapes as lava.",
    "bees.txt": "Honey bees communicate the direction of flowers with a waggle dance.",
    "comets.txt": "A comet's tail points away from the Sun, pushed by the solar wind.",
    "rust.txt": "Iron rusts when it reacts with oxygen and water to form iron oxide.",
}
QUESTIONS = {
    "q1": ("What causes tides?", "tides.txt"),
    "q2": ("Why does sourdough rise?", "bread.txt"),
    "q3": ("How do bees tell each other where flowers are?", "bees.txt"),
    "q4": ("Why does iron rust?", "rust.txt"),
}


@pytest.fixture(scope="module")
def rebuild_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Api]]:
    with running_cloud(
        tmp_path_factory.mktemp("reembed"),
        env={
            "DOCKET_EMBEDDING_PRECISION": "fp32",
            "DOCKET_REEMBED_SHARD_CHUNKS": "2",  # several shards: Load's Map runs them in parallel
            "DOCKET_GENERATION_CACHE_SECONDS": "0",  # the query path sees a cutover at once
        },
    ) as running:
        yield running


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("golden")
    (folder / "qrels").mkdir()
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": s, "text": t}) + "\n" for s, t in DOCS.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in QUESTIONS.items())
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{s}\t1\n" for q, (_, s) in QUESTIONS.items())
    )
    return folder


class Admin:
    def __init__(self, api: Api) -> None:
        resp = api.http.post(
            "/_local/token", json={"tenant": "acme", "groups": [], "scopes": ["admin", "query"]}
        )
        resp.raise_for_status()
        self.http = api.http
        self.headers = {"authorization": f"Bearer {resp.json()['token']}"}

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, headers=self.headers, **kw)

    def status(self) -> dict[str, Any]:
        resp = self("GET", "/index/status")
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def wait(self, number: int, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            g = next(g for g in self.status()["generations"] if g["number"] == number)
            if g["state"] != "building":
                return g  # type: ignore[no-any-return]
            time.sleep(0.2)
        raise TimeoutError(f"generation {number} still building after {timeout}s")


def _ingest(api: Api, docs: dict[str, str]) -> dict[str, str]:
    ids = {source: api.upload(source, text.encode()) for source, text in docs.items()}
    for doc_id in ids.values():
        assert api.wait_status(doc_id)["status"] == "indexed"
    return ids


def _sources(answer: dict[str, Any]) -> set[str]:
    return {c["source"] for c in answer["chunks"]}


def test_routes_need_the_admin_scope(rebuild_cloud: tuple[LocalCloud, Api]) -> None:
    _, api = rebuild_cloud
    assert api.call("GET", "/index/status").status_code == 403
    assert api.call("POST", "/index/generations", json={"model": "x"}).status_code == 403
    assert api.call("POST", "/index/rollback").status_code == 403
    models = api.call("GET", "/models").json()["models"]
    assert {m["name"] for m in models} >= {"all-MiniLM-L6-v2", "all-MiniLM-L6-v2-int8"}


def test_rollback_with_no_previous_generation_is_a_clear_error(
    rebuild_cloud: tuple[LocalCloud, Api],
) -> None:
    _, api = rebuild_cloud
    resp = Admin(api)("POST", "/index/rollback")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "no_previous_generation"


def test_a_gate_with_nothing_to_measure_aborts_and_keeps_live(
    rebuild_cloud: tuple[LocalCloud, Api], tmp_path: Path, golden: Path
) -> None:
    _, api = rebuild_cloud
    admin = Admin(api)
    _ingest(api, {"tides.txt": DOCS["tides.txt"]})
    wrong = tmp_path / "golden"
    wrong.mkdir()
    for name in ("corpus.jsonl", "queries.jsonl"):
        (wrong / name).write_text((golden / name).read_text())
    (wrong / "qrels").mkdir()
    (wrong / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tnowhere.txt\t1\n")
    resp = admin(
        "POST",
        "/index/generations",
        json={"model": "all-MiniLM-L6-v2-int8", "golden_dir": str(wrong), "golden_tenant": "acme"},
    )
    assert resp.status_code == 202, resp.text
    number = resp.json()["generation"]["number"]
    g = admin.wait(number)
    assert g["state"] == "aborted"
    assert g["reason"].startswith("gate: ") and "nothing" in g["reason"]
    status = admin.status()
    assert status["live"]["model"] == "all-MiniLM-L6-v2" and status["building"] is None
    answer = api.ask("What causes tides?")
    assert answer["embedding_model"].endswith("-fp32") or "int8" not in answer["embedding_model"]
    assert "tides.txt" in _sources(answer)


def test_rebuild_fp32_to_int8_with_writes_during_the_build_then_rollback(
    rebuild_cloud: tuple[LocalCloud, Api], golden: Path
) -> None:
    cloud, api = rebuild_cloud
    admin = Admin(api)
    ids = _ingest(api, {s: t for s, t in DOCS.items() if s not in ("comets.txt",)})
    before = api.ask("What causes tides?")["embedding_model"]
    assert "int8" not in before

    resp = admin(
        "POST",
        "/index/generations",
        json={"model": "all-MiniLM-L6-v2-int8", "golden_dir": str(golden), "golden_tenant": "acme"},
    )
    assert resp.status_code == 202, resp.text
    number = resp.json()["generation"]["number"]
    # a second rebuild while this one runs is refused
    second = admin("POST", "/index/generations", json={"model": "all-MiniLM-L6-v2-int8"})
    assert second.status_code == 409, second.text
    # writes while it builds: one new document, one deleted; queries keep working
    added = api.upload("comets.txt", DOCS["comets.txt"].encode())
    assert api.call("DELETE", f"/documents/{ids['volcano.txt']}").status_code in (200, 202)
    during = api.ask("Why does sourdough rise?")
    assert "bread.txt" in _sources(during)
    assert api.wait_status(added)["status"] == "indexed"

    g = admin.wait(number)
    assert g["state"] == "live", g
    gate = g["gate"]
    assert gate["passed"] and gate["missing"] == 0 and gate["extra"] == 0
    assert set(gate["quality"]) == {"live", "new"}
    assert gate["quality"]["new"]["ndcg@10"] >= gate["quality"]["live"]["ndcg@10"] - 0.01
    assert set(g["timings_s"]) >= {"create", "snapshot", "embed", "catch_up", "gate"}
    cloud.wait_idle()

    after = api.ask("Which way does a comet's tail point?")
    assert after["embedding_model"].endswith("-int8")
    assert "comets.txt" in _sources(after)
    assert "volcano.txt" not in _sources(api.ask("How does a volcano erupt?"))

    # rollback: generation 1 is live again, and it kept receiving writes
    resp = admin("POST", "/index/rollback")
    assert resp.status_code == 200, resp.text
    assert resp.json()["live"]["number"] == 1
    back = api.ask("Which way does a comet's tail point?")
    assert "int8" not in back["embedding_model"]
    assert "comets.txt" in _sources(back)
    assert "volcano.txt" not in _sources(api.ask("How does a volcano erupt?"))


def test_a_job_that_fails_aborts_with_its_reason(
    rebuild_cloud: tuple[LocalCloud, Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard with a malformed line fails the job (batch_job.MalformedLine); the failure event
    fails the waiting EmbedBatch state, Abort runs, and the live generation stays."""
    from docket.embedding import batch_job

    _, api = rebuild_cloud
    admin = Admin(api)
    live = admin.status()["live"]

    def malformed(*args: Any, **kwargs: Any) -> Any:
        raise batch_job.MalformedLine("part-00000.jsonl", 2, "not a JSON object")

    monkeypatch.setattr(batch_job, "transform_dir", malformed)
    other = "all-MiniLM-L6-v2" if live["model"].endswith("int8") else "all-MiniLM-L6-v2-int8"
    resp = admin("POST", "/index/generations", json={"model": other})
    assert resp.status_code == 202, resp.text
    g = admin.wait(resp.json()["generation"]["number"])
    assert g["state"] == "aborted"
    assert g["reason"].startswith("embed: embed_job_failed")
    assert "part-00000.jsonl line 2" in g["reason"]
    assert admin.status()["live"]["number"] == live["number"]


def test_cli_status_rebuild_wait_and_rollback(
    rebuild_cloud: tuple[LocalCloud, Api], capsys: pytest.CaptureFixture[str]
) -> None:
    from docket import cli

    _, api = rebuild_cloud
    url = ["--url", api.url, "--tenant", "acme"]
    assert cli.main(["models", "list"]) == 0
    assert "all-MiniLM-L6-v2-int8" in capsys.readouterr().out
    assert cli.main(["index", "status", *url]) == 0
    live = Admin(api).status()["live"]
    assert f"live:     g{live['number']}" in capsys.readouterr().out
    other = "all-MiniLM-L6-v2" if live["model"].endswith("int8") else "all-MiniLM-L6-v2-int8"
    assert cli.main(["index", "rebuild", "--model", other, "--wait", *url]) == 0
    out = capsys.readouterr()
    assert "cut over:" in out.out and out.err.strip()  # stages are shown as they are seen
    assert Admin(api).status()["live"]["model"] == other
    # the same model again: nothing to rebuild, a clear error and a non-zero exit
    assert cli.main(["index", "rebuild", "--model", other, *url]) == 2
    assert "already uses" in capsys.readouterr().err
    assert cli.main(["index", "rollback", *url]) == 0
    assert "rolled back" in capsys.readouterr().out
    assert Admin(api).status()["live"]["model"] == live["model"]
