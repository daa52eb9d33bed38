"""The rebuild's steps on fakes: an embedded index per generation, a hashing embedder with a
distinct model per generation, the in-memory registry, fake chunk table, objects, job and state
machine. The same steps run through the ASL on the local cloud in
tests/integration/test_reembed.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from docket.config import Settings
from docket.embedding.batch_job import output_line, parse_lines
from docket.embedding.hashing import HashingEmbedder
from docket.errors import InvalidRequest
from docket.generations.jobs import job_event
from docket.generations.live import LiveGenerations
from docket.generations.models import GenerationState, generation_settings
from docket.generations.rebuild import GateFailed, RebuildService
from docket.generations.registry import InMemoryGenerationRegistry
from docket.models import EmbeddingModelInfo
from docket.search.embedded import EmbeddedIndex
from tests.search_contract import make_chunk_record
from tests.unit.fakes import FakeBlobStore, FakeChunkStore


class Embedder:
    """The hashing fake under a model name of its own (one per precision)."""

    def __init__(self, precision: str) -> None:
        self.model = EmbeddingModelInfo(name="fake", version=precision, dimension=64)
        self._inner = HashingEmbedder(64)

    def embed_documents(self, texts: list[str]) -> Any:
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str) -> Any:
        return self._inner.embed_query(text)


class Opener:
    def __init__(self) -> None:
        self.opened: dict[str, tuple[EmbeddedIndex, Embedder]] = {}

    def __call__(self, settings: Settings) -> tuple[Any, Any]:
        key = str(settings.index_dir)
        if key not in self.opened or self.opened[key][0]._closed:
            embedder = Embedder(settings.embedding_precision)
            self.opened[key] = (EmbeddedIndex(settings.index_dir, embedder.model), embedder)
        return self.opened[key]


class Jobs:
    """Embeds the input shards at once (the job's line format) and reports through
    ``on_event``; ``fail`` makes it report a failure instead."""

    def __init__(self, objects: FakeBlobStore) -> None:
        self.objects = objects
        self.service: RebuildService | None = None
        self.fail: str | None = None

    def start(self, *, name: str, settings: Settings, input_uri: str, output_uri: str) -> None:
        assert self.service is not None
        bucket, _, prefix = input_uri[5:].partition("/")
        _, _, out_prefix = output_uri[5:].partition("/")
        embedder = Embedder(settings.embedding_precision)
        for (b, key), (data, _, _) in list(self.objects.objects.items()):
            if b == bucket and key.startswith(prefix):
                records = parse_lines(data, source=key)
                vectors = embedder.embed_documents([r.text for r in records])
                out = "".join(
                    output_line(r.chunk_id, v) + "\n" for r, v in zip(records, vectors, strict=True)
                )
                self.objects.put(bucket, out_prefix + key.rsplit("/", 1)[-1] + ".out", out.encode())
        status = "Failed" if self.fail else "Completed"
        self.service.on_job_event(job_event(name, status, self.fail))


class Executions:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.results: list[tuple[str, Any]] = []
        self.is_running = True

    def start(self, name: str, payload: dict[str, Any]) -> str:
        self.started.append(payload)
        return f"arn:aws:states:local:0:execution:reembed:{name}"

    def running(self, arn: str) -> bool:
        return self.is_running

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self.results.append(("success", output))

    def fail(self, token: str, error: str, cause: str) -> None:
        self.results.append(("failure", (error, cause)))


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    settings = Settings(
        index_dir=tmp_path / "index",
        embedding_precision="fp32",
        reembed_shard_chunks=2,
        reembed_gate_settle_seconds=0,
        generations_table="fake",
    )
    registry = InMemoryGenerationRegistry()
    chunks, objects, executions, opener = FakeChunkStore(), FakeBlobStore(), Executions(), Opener()
    jobs = Jobs(objects)
    service = RebuildService(settings, registry, chunks, objects, jobs, executions, opener=opener)
    jobs.service = service
    records = [
        make_chunk_record("acme", f"doc{i}.txt", f"chunk {i} about tides and moons")
        for i in range(5)
    ] + [make_chunk_record("globex", "g.txt", "globex chunk on volcanoes", groups=["eng"])]
    chunks.put_many(records)
    live_index, live_embedder = opener(settings)  # generation 1: the settings' own index
    live_index.upsert(records, live_embedder.embed_documents([r.text for r in records]))
    live_index.commit()
    return {
        "settings": settings,
        "registry": registry,
        "chunks": chunks,
        "objects": objects,
        "executions": executions,
        "jobs": jobs,
        "service": service,
        "opener": opener,
        "records": records,
    }


def build_until_gate(w: dict[str, Any], *, between: Any = None) -> int:
    service: RebuildService = w["service"]
    g = service.start("all-MiniLM-L6-v2-int8")
    n = g.number
    service.create(n)
    service.dual_write(n)
    shards = service.snapshot(n)["shards"]
    if between:
        between()
    service.start_job(n, "token-1")
    assert w["executions"].results[-1][0] == "success"
    for shard in shards:
        service.load(n, shard)
    service.catch_up(n)
    return n


def new_index(w: dict[str, Any], n: int) -> EmbeddedIndex:
    g = w["registry"].get(n)
    return w["opener"](generation_settings(w["settings"], g))[0]  # type: ignore[no-any-return]


def test_a_whole_rebuild_cuts_over_with_every_chunk(world: dict[str, Any]) -> None:
    service, registry = world["service"], world["registry"]
    n = build_until_gate(world)
    figures = service.gate(n)
    assert figures["passed"] and figures["missing"] == 0 and figures["extra"] == 0
    assert figures["tenants"] == 2
    assert service.cutover(n)["live"] == n
    assert registry.live().number == n and registry.live().model == "all-MiniLM-L6-v2-int8"
    assert registry.get(1).state == GenerationState.RETIRED
    expected = {(r.tenant, r.chunk_id) for r in world["records"]}
    assert new_index(world, n).chunk_keys() == expected
    g = registry.get(n)
    assert g.counts["snapshot"] == 6 and g.counts["shards"] == 3
    assert set(g.timings_s) >= {"create", "snapshot", "embed", "catch_up", "gate", "cutover"}
    assert world["executions"].started[0]["generation"] == n


def test_catch_up_settles_what_raced_with_the_snapshot(world: dict[str, Any]) -> None:
    chunks: FakeChunkStore = world["chunks"]
    records = world["records"]
    added = make_chunk_record("acme", "late.txt", "a late chunk about comets")
    regrouped = records[0].model_copy(update={"acl_groups": ["legal"]})

    def between() -> None:  # after the snapshot, with no embed step to dual-write them
        chunks.put_many([added, regrouped])
        chunks.delete_many("acme", records[1].document_id, [records[1].chunk_id])

    n = build_until_gate(world, between=between)
    index = new_index(world, n)
    keys = index.chunk_keys()
    assert ("acme", added.chunk_id) in keys
    assert ("acme", records[1].chunk_id) not in keys
    counts = world["registry"].get(n).counts
    assert (
        counts["catch_up_embedded"],
        counts["catch_up_deleted"],
        counts["catch_up_metadata"],
    ) == (1, 1, 1)
    # the ACL change reached the new index: the chunk is hidden from callers outside "legal"
    from docket.models import SearchFilter

    hits = index.search_bm25("chunk 0 tides", SearchFilter(tenant="acme"), 10)
    assert records[0].chunk_id not in {h.chunk.chunk_id for h in hits}
    assert world["service"].gate(n)["passed"]


def test_a_gate_that_finds_missing_chunks_refuses_and_abort_keeps_live(
    world: dict[str, Any],
) -> None:
    service, registry = world["service"], world["registry"]
    n = build_until_gate(world)
    index = new_index(world, n)
    index.delete_chunks("acme", [world["records"][2].chunk_id])
    index.commit()
    with pytest.raises(GateFailed, match="1 chunks missing"):
        service.gate(n)
    assert registry.get(n).gate["passed"] is False  # the figures are kept on the generation
    out = service.abort(n, "GateFailed", json.dumps({"errorMessage": "the gate refused"}))
    assert out == {"aborted": True, "reason": "gate: GateFailed: the gate refused"}
    assert registry.live().number == 1 and registry.building() is None
    assert not generation_settings(world["settings"], registry.get(n)).index_dir.exists()


def test_a_failed_job_fails_the_waiting_state_with_its_reason(world: dict[str, Any]) -> None:
    service = world["service"]
    world["jobs"].fail = "ClientError: out of memory"
    g = service.start("all-MiniLM-L6-v2-int8")
    service.create(g.number)
    service.snapshot(g.number)
    service.start_job(g.number, "token-1")
    kind, (error, cause) = world["executions"].results[-1]
    assert kind == "failure" and error == "embed_job_failed" and "out of memory" in cause
    # an event of some other job is not this build's
    service.on_job_event(job_event("someone-elses-job", "Completed"))
    assert len(world["executions"].results) == 1


def test_a_build_whose_execution_ended_is_aborted_on_the_next_status(world: dict[str, Any]) -> None:
    service, registry = world["service"], world["registry"]
    g = service.start("all-MiniLM-L6-v2-int8")
    world["executions"].is_running = False  # the local cloud crashed mid-build
    status = service.status()
    assert status["building"] is None and status["live"]["number"] == 1
    aborted = registry.get(g.number)
    assert aborted.state == GenerationState.ABORTED and "ended without finishing" in aborted.reason
    world["executions"].is_running = True
    assert service.start("all-MiniLM-L6-v2-int8").number == g.number + 1


def test_start_refuses_the_live_model_and_unknown_models(world: dict[str, Any]) -> None:
    service = world["service"]
    with pytest.raises(InvalidRequest, match="already uses"):
        service.start("all-MiniLM-L6-v2")  # the settings' fp32 model is generation 1's
    with pytest.raises(InvalidRequest, match="unknown model"):
        service.start("bert-huge")


def test_writes_go_to_every_generation_with_an_index(world: dict[str, Any]) -> None:
    settings, registry, service = world["settings"], world["registry"], world["service"]
    live = LiveGenerations(settings, registry)
    assert [s.index_dir for s in live.write_settings()] == [settings.index_dir]
    g = service.start("all-MiniLM-L6-v2-int8")
    targets = live.write_settings()
    assert [s.embedding_precision for s in targets] == ["fp32", "int8"]  # live first
    registry.cutover(g.number)
    assert [s.embedding_precision for s in live.write_settings()] == ["int8", "fp32"]
    registry.rollback()
    generation, read = live.live()
    assert generation is not None and generation.number == 1
    assert read.embedding_precision == "fp32" and read.index_dir == settings.index_dir


def test_a_hosted_model_is_embedded_by_the_load_tasks_without_a_job(world: dict[str, Any]) -> None:
    service, registry = world["service"], world["registry"]
    started: list[str] = []
    world["jobs"].start = lambda **kw: started.append(kw["name"])  # must not be called
    g = service.start("titan-embed-text-v2-512")
    n = g.number
    service.create(n)
    snapshot = service.snapshot(n)
    assert snapshot["batch_job"] is False
    for shard in snapshot["shards"]:
        assert (
            service.run("load", {"generation": n, "shard": shard, "batch_job": False})["loaded"] > 0
        )
    service.catch_up(n)
    assert service.gate(n)["passed"]
    service.cutover(n)
    assert started == []
    live = registry.live()
    assert live.model == "titan-embed-text-v2-512"
    read = generation_settings(world["settings"], live)
    assert (read.embedding_provider, read.embedding_dimensions) == ("bedrock", 512)
    assert new_index(world, n).chunk_keys() == {(r.tenant, r.chunk_id) for r in world["records"]}


def test_a_deployment_without_onnxruntime_refuses_the_local_models(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from docket.generations import rebuild

    monkeypatch.setattr(rebuild, "_onnx_available", lambda: False)
    with pytest.raises(InvalidRequest, match="cannot run"):
        world["service"].start("all-MiniLM-L6-v2-int8")
    assert world["registry"].building() is None
    assert world["service"].start("cohere-embed-english-v3").model == "cohere-embed-english-v3"


def test_cleanup_deletes_generations_past_their_retention_only(world: dict[str, Any]) -> None:
    from datetime import UTC, datetime, timedelta

    service, registry = world["service"], world["registry"]
    n = build_until_gate(world)
    service.gate(n)
    service.cutover(n)  # generation 1 is retired now, within its retention
    assert service.run("cleanup", {}) == {"deleted": []}
    old = registry.get(1)
    registry.save(old.model_copy(update={"retired_at": datetime.now(UTC) - timedelta(days=8)}))
    assert service.run("cleanup", {}) == {"deleted": [1]}
    assert registry.get(1).state == GenerationState.DELETED
    assert not world["settings"].index_dir.exists()
