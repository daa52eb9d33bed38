"""The rebuild: every step of state_machines/reembed.asl.json, and what starts and ends it.

CreateGeneration → StartDualWrite → Snapshot → EmbedBatch → Load (a Map over shards) → CatchUp →
Gate → Cutover → Cleanup; any failure → Abort, which leaves the live generation untouched.

Dual write begins when the generation is recorded (``start``), before the snapshot is read, so
every chunk change after the snapshot reaches the new index through the embed step. CatchUp then
settles what raced with the snapshot: chunks the new index lacks are embedded, chunks the Chunks
table no longer holds are deleted, and chunks whose metadata (ACL groups, pages) changed since
the snapshot get the current metadata, so a loaded snapshot line never leaves a stale ACL behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from docket.chunking.context import embedding_input
from docket.config import Settings
from docket.errors import Conflict, DocketError, InvalidRequest
from docket.generations.jobs import ENDED, JOB_EVENT, EmbedJobs, Executions
from docket.generations.models import (
    MODELS,
    Generation,
    GenerationState,
    generation_key,
    generation_settings,
    model_choice,
    model_of,
)
from docket.generations.registry import GenerationRegistry
from docket.ingest.reconcile import EMBED_BLOCK, ChunkSource, embed_into, scan_chunks
from docket.models import ChunkRecord
from docket.observability import logger

# Chunks per index write while loading (the embedded index commits once per shard).


class GateFailed(DocketError):
    code = "gate_failed"
    permanent = True


class EmbedJobFailed(DocketError):
    code = "embed_job_failed"
    permanent = True


class Objects(Protocol):
    def get(self, bucket: str, key: str) -> bytes: ...

    def put(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None: ...


def _prefix(number: int) -> str:
    return f"reembed/g{number}"


class RebuildService:
    def __init__(
        self,
        settings: Settings,
        registry: GenerationRegistry,
        chunks: ChunkSource,
        objects: Objects,
        jobs: EmbedJobs,
        executions: Executions,
        *,
        opener: Callable[[Settings], tuple[Any, Any]] | None = None,
    ) -> None:
        """``opener``: a generation's settings → (index, embedder); the process's cached ones
        (docket.generations.live.open_generation) unless a test gives its own."""
        self.settings = settings
        self._opener = opener
        self.registry = registry
        self.chunks = chunks
        self.objects = objects
        self.jobs = jobs
        self.executions = executions
        self.bucket = settings.text_bucket

    # -- what the API and the CLI ask ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        self._reap()
        generations = self.registry.all()
        live = next((g for g in generations if g.state == GenerationState.LIVE), None)
        building = next((g for g in generations if g.state == GenerationState.BUILDING), None)
        return {
            "live": live.model_dump(mode="json")
            if live
            else self._implicit().model_dump(mode="json"),
            "building": building.model_dump(mode="json") if building else None,
            "generations": [g.model_dump(mode="json", exclude={"job"}) for g in generations],
        }

    def start(
        self,
        model: str,
        *,
        golden: dict[str, str] | None = None,
        requested_by: str | None = None,
        tenant: str | None = None,
    ) -> Generation:
        """Record the new generation (dual write starts here) and start its execution."""
        choice = model_choice(model)
        self._reap()
        live = self.registry.live() or self._implicit()
        if choice.name == live.model:
            raise InvalidRequest(
                f"generation {live.number} already uses {choice.name}: nothing to rebuild"
            )
        if choice.settings.get("embedding_provider") == "onnx" and not _onnx_available():
            raise InvalidRequest(
                f"{choice.name} runs on the local ONNX model, which this deployment cannot run "
                "for queries (no onnxruntime in its functions): choose a hosted model"
            )
        golden = golden or self._configured_golden()
        if golden is not None:
            _check_golden(golden)
        number = max([g.number for g in self.registry.all()] + [live.number]) + 1
        new = Generation(
            number=number,
            model=choice.name,
            state=GenerationState.BUILDING,
            stage="starting",
            golden=golden,
            requested_by=requested_by,
            tenant=tenant,
        )
        self.registry.begin(live, new)
        name = f"g{number}-{int(time.time())}"
        try:
            arn = self.executions.start(
                name,
                {
                    "generation": number,
                    "config": {
                        "job_timeout_seconds": self.settings.reembed_job_timeout_seconds,
                        "approve": self.settings.reembed_approval,
                        "approval_timeout_seconds": self.settings.approval_timeout_seconds,
                    },
                },
            )
        except Exception as exc:
            self.registry.abort(number, f"the rebuild could not start: {exc}")
            raise
        new = new.model_copy(update={"execution": arn})
        self.registry.save(new)
        logger.info("rebuild started", generation=number, model=choice.name, execution=arn)
        return new

    def rollback(self) -> Generation:
        g = self.registry.rollback()
        logger.info("rolled back", generation=g.number, model=g.model)
        return g

    # -- the state machine's steps ---------------------------------------------------------------

    def run(self, action: str, event: dict[str, Any]) -> dict[str, Any]:
        if action == "cleanup":  # the daily schedule: generations past their retention
            return {"deleted": self.cleanup()}
        number = int(event["generation"])
        steps = {
            "create": lambda: self.create(number),
            "dual_write": lambda: self.dual_write(number),
            "snapshot": lambda: self.snapshot(number),
            "start_job": lambda: self.start_job(number, str(event["token"])),
            "load": lambda: self.load(
                number, str(event["shard"]), embed=event.get("batch_job") is False
            ),
            "catch_up": lambda: self.catch_up(number),
            "gate": lambda: self.gate(number),
            "request_approval": lambda: self.request_approval(number, str(event["token"])),
            "cutover": lambda: self.cutover(number),
            "abort": lambda: self.abort(
                number, str(event.get("error") or "Error"), str(event.get("cause") or "")
            ),
        }
        if action not in steps:
            raise InvalidRequest(f"unknown rebuild action {action!r}")
        return steps[action]()

    def create(self, number: int) -> dict[str, Any]:
        with self._stage(number, "create") as g:
            index, _ = self._open(g)
            _bulk_loading(index, True)
            index.commit()
            return {"index": str(getattr(index, "path", "") or "")}

    def dual_write(self, number: int) -> dict[str, Any]:
        with self._stage(number, "dual_write"):
            from docket.generations.live import LiveGenerations

            targets = LiveGenerations(self.settings, self.registry).write_settings()
            mine = generation_settings(self.settings, self._get(number))
            if generation_key(mine) not in {generation_key(t) for t in targets}:
                raise Conflict(f"generation {number} is not among the write targets")
            return {"targets": len(targets)}

    def snapshot(self, number: int) -> dict[str, Any]:
        """Every tenant's chunks → ``input/part-*.jsonl`` (what the job reads) and
        ``records/part-*.jsonl`` (the whole records, line for line, for Load and CatchUp)."""
        from docket.embedding.batch_job import input_line

        with self._stage(number, "snapshot") as g:
            size = self.settings.reembed_shard_chunks
            records = sorted(scan_chunks(self.chunks), key=lambda c: c.chunk_id)
            shards: list[str] = []
            for start in range(0, len(records), size):
                part = records[start : start + size]
                name = f"part-{start // size:05d}.jsonl"
                self.objects.put(
                    self.bucket,
                    f"{_prefix(number)}/input/{name}",
                    "".join(
                        input_line(c.chunk_id, c.tenant, embedding_input(c)) + "\n" for c in part
                    ).encode(),
                    "application/jsonlines",
                )
                self.objects.put(
                    self.bucket,
                    f"{_prefix(number)}/records/{name}",
                    "".join(c.model_dump_json() + "\n" for c in part).encode(),
                    "application/jsonlines",
                )
                shards.append(name)
            self._count(g.number, snapshot=len(records), shards=len(shards))
            choice = MODELS.get(g.model)
            batch_job = choice.batch_job if choice else True
            return {"shards": shards, "chunks": len(records), "batch_job": batch_job}

    def start_job(self, number: int, token: str) -> dict[str, Any]:
        with self._stage(number, "embed") as g:
            name = f"docket-reembed-g{number}-{int(time.time())}"
            job = {"name": name, "token": token, "started": str(time.time())}
            self.registry.save(g.model_copy(update={"job": job}))
            self.jobs.start(
                name=name,
                settings=generation_settings(self.settings, g),
                input_uri=f"s3://{self.bucket}/{_prefix(number)}/input/",
                output_uri=f"s3://{self.bucket}/{_prefix(number)}/output/",
            )
            return {"job": name}

    def on_job_event(self, event: dict[str, Any]) -> None:
        """SageMaker's state-change event (EventBridge): resume or fail the waiting build."""
        if event.get("detail-type") != JOB_EVENT:
            raise InvalidRequest(f"not a {JOB_EVENT!r} event")
        detail = event.get("detail") or {}
        status = str(detail.get("TransformJobStatus") or "")
        if status not in ENDED:
            return
        name = str(detail.get("TransformJobName") or "")
        g = self.registry.building()
        if g is None or not g.job or g.job.get("name") != name:
            logger.info("job event of no current build", job=name, status=status)
            return
        token = g.job["token"]
        # the job's own wall time (the EmbedBatch Lambda only starts it)
        ended = time.time()
        timings = dict(g.timings_s)
        timings["embed_job"] = round(ended - float(g.job.get("started") or ended), 3)
        job = {**g.job, "ended": str(ended)}
        g = g.model_copy(update={"timings_s": timings, "job": job})
        self.registry.save(g)
        if status == "Completed":
            self.executions.succeed(token, {"job": name, "status": status})
        else:
            reason = f"job {name}: {detail.get('FailureReason') or status}"
            # kept on the generation too: Abort shows it even where the Cause does not travel
            self.registry.save(g.model_copy(update={"job": {**job, "failure": reason}}))
            self.executions.fail(token, EmbedJobFailed.code, reason)

    def load(self, number: int, shard: str, *, embed: bool = False) -> dict[str, Any]:
        """One shard → the new index: the job's vectors with the snapshot's records, or (a
        hosted model, ``embed``) the records embedded here through the provider adapter."""
        from docket.embedding.batch_job import read_output_line

        with self._stage(number, "load", record=False) as g:
            index, embedder = self._open(g)
            records = self._records(number, shard)
            if embed:
                embed_into(index, embedder, records)
                index.commit()
                return {"shard": shard, "loaded": len(records)}
            out = self.objects.get(self.bucket, f"{_prefix(number)}/output/{shard}.out")
            vectors = [read_output_line(line) for line in out.decode().splitlines() if line]
            if len(vectors) != len(records):
                raise EmbedJobFailed(
                    f"{shard}.out has {len(vectors)} vectors for {len(records)} chunks"
                )
            for record, (chunk_id, _) in zip(records, vectors, strict=True):
                if record.chunk_id != chunk_id:
                    raise EmbedJobFailed(f"{shard}.out is out of order at chunk {chunk_id}")
            for start in range(0, len(records), EMBED_BLOCK):
                block = slice(start, start + EMBED_BLOCK)
                index.upsert(records[block], np.stack([v for _, v in vectors[block]]))
            index.commit()
            return {"shard": shard, "loaded": len(records)}

    def catch_up(self, number: int) -> dict[str, Any]:
        with self._stage(number, "catch_up") as g:
            index, embedder = self._open(g)
            _bulk_loading(index, False)
            if g.job and g.job.get("ended"):  # Load ran between the job's end and now
                timings = {**g.timings_s, "load": round(time.time() - float(g.job["ended"]), 3)}
                self.registry.save(g.model_copy(update={"timings_s": timings}))
            current = {(c.tenant, c.chunk_id): c for c in scan_chunks(self.chunks)}
            snapshot = {
                (c.tenant, c.chunk_id): c
                for shard in self._shards(number)
                for c in self._records(number, shard)
            }
            held = index.chunk_keys()
            missing = [current[k] for k in sorted(set(current) - held)]
            extra = sorted(held - set(current))
            stale = [
                c for k, c in current.items() if k in held and k in snapshot and snapshot[k] != c
            ]
            embed_into(index, embedder, missing)
            by_tenant: dict[str, list[str]] = {}
            for tenant, chunk_id in extra:
                by_tenant.setdefault(tenant, []).append(chunk_id)
            for tenant, ids in by_tenant.items():
                index.delete_chunks(tenant, ids)
            if stale:
                index.update_metadata(stale)
            index.commit()
            figures = {"embedded": len(missing), "deleted": len(extra), "metadata": len(stale)}
            self._count(number, **{f"catch_up_{k}": v for k, v in figures.items()})
            return figures

    def gate(self, number: int) -> dict[str, Any]:
        """(a) the new index holds exactly the Chunks table's chunk ids, tenant by tenant;
        (b) on the golden set, nDCG@10 and Recall@50 within the configured drops of live."""
        with self._stage(number, "gate") as g:
            index, _ = self._open(g)
            table, missing, extra = self._parity(index)
            figures: dict[str, Any] = {
                "chunks": len(table),
                "missing": len(missing),
                "extra": len(extra),
                "tenants": len({t for t, _ in table}),
            }
            reasons: list[str] = []
            if missing or extra:
                reasons.append(f"{len(missing)} chunks missing and {len(extra)} extra")
            if g.golden:
                live = self.registry.live() or self._implicit()
                quality = {
                    "live": self._quality(generation_settings(self.settings, live), g.golden),
                    "new": self._quality(generation_settings(self.settings, g), g.golden),
                }
                figures["quality"] = quality
                figures["golden"] = g.golden
                s = self.settings
                for metric, drop in (
                    ("ndcg@10", s.reembed_gate_ndcg_drop),
                    ("recall@50", s.reembed_gate_recall_drop),
                ):
                    if quality["new"][metric] < quality["live"][metric] - drop:
                        reasons.append(
                            f"{metric} {quality['new'][metric]:.4f} is below live "
                            f"{quality['live'][metric]:.4f} - {drop}"
                        )
            figures["passed"] = not reasons
            self.registry.save(self._get(number).model_copy(update={"gate": figures}))
            if reasons:
                raise GateFailed("the gate refused the generation: " + "; ".join(reasons))
            return figures

    def request_approval(self, number: int, token: str) -> dict[str, Any]:
        """Ask a person to approve the cutover (the agent's approvals: Slack, e-mailed link,
        API), showing the gate's figures; their decision sends ``token`` back, and a denial
        aborts the build. The one who started the rebuild cannot approve it (four eyes)."""
        from docket.agent.factory import get_approval_service
        from docket.agent.models import ApprovalRecord

        with self._stage(number, "approve") as g:
            gate = g.gate or {}
            quality = gate.get("quality") or {}
            summary = [("Generation", f"g{number}: {g.model}"), ("Chunks", str(gate.get("chunks")))]
            for metric in ("ndcg@10", "recall@50"):
                if quality:
                    summary.append(
                        (
                            metric,
                            f"{quality['live'][metric]:.4f} live → {quality['new'][metric]:.4f}",
                        )
                    )
            now = datetime.now(UTC)
            record = ApprovalRecord(
                task_id=f"reembed_g{number}",
                tenant=g.tenant or "admin",
                execution_arn=g.execution or "",
                step=number,
                call_id="cutover",
                tool="index_cutover",
                arguments={"generation": number, "model": g.model, "gate": gate},
                summary=summary,
                requester=g.requested_by or "unknown",
                task_token=token,
                created_at=now,
                expires_at=now + timedelta(seconds=self.settings.approval_timeout_seconds),
            )
            approval = get_approval_service().request(record)
            return {"approval_id": approval.approval_id}

    def cutover(self, number: int) -> dict[str, Any]:
        with self._stage(number, "cutover"):
            pass
        g = self.registry.cutover(number)
        logger.info("cut over", generation=number, model=g.model)
        return {"live": number, "deleted": self.cleanup()}

    def cleanup(self) -> list[int]:
        """Delete the indexes of generations retired longer than the retention."""
        keep = timedelta(days=self.settings.generation_retention_days)
        now = datetime.now(UTC)
        deleted: list[int] = []
        for g in self.registry.all():
            if g.state == GenerationState.RETIRED and g.retired_at and now - g.retired_at >= keep:
                self._drop(g)
                self.registry.mark_deleted(g.number)
                deleted.append(g.number)
        return deleted

    def abort(self, number: int, error: str, cause: str) -> dict[str, Any]:
        g = self._get(number)
        if g.state != GenerationState.BUILDING:
            return {"aborted": False, "state": g.state}
        detail = _cause(cause) or (g.job or {}).get("failure") or "no details"
        reason = f"{g.stage or 'starting'}: {error}: {detail}"
        self.registry.abort(number, reason)
        self._drop(g)
        logger.warning("rebuild aborted", generation=number, reason=reason)
        return {"aborted": True, "reason": reason}

    # -- helpers ---------------------------------------------------------------------------------

    def _implicit(self) -> Generation:
        """The settings' own index, before any rebuild: generation 1."""
        return Generation(number=1, model=model_of(self.settings), state=GenerationState.LIVE)

    def _configured_golden(self) -> dict[str, str] | None:
        s = self.settings
        if s.reembed_golden_dir is None:
            return None
        return {
            "dir": str(s.reembed_golden_dir),
            "tenant": s.reembed_golden_tenant or "",
            "split": "test",
        }

    def _reap(self) -> None:
        """A build whose execution is no longer running (a crash of the local cloud, an
        execution stopped by hand) is aborted, so the next rebuild can start."""
        g = self.registry.building()
        if g is None or g.execution is None:
            return
        if not self.executions.running(g.execution):
            self.abort(g.number, "ExecutionEnded", "its execution ended without finishing")

    def _get(self, number: int) -> Generation:
        g = self.registry.get(number)
        if g is None:
            raise InvalidRequest(f"no generation {number}")
        return g

    @contextmanager
    def _stage(self, number: int, stage: str, *, record: bool = True) -> Iterator[Generation]:
        g = self._get(number)
        if g.state != GenerationState.BUILDING:
            raise Conflict(f"generation {number} is {g.state}, not being built")
        if record and g.stage != stage:
            g = g.model_copy(update={"stage": stage})
            self.registry.save(g)
        started = time.monotonic()
        yield g
        if not record:
            return
        g = self._get(number)
        timings = dict(g.timings_s)
        timings[stage] = round(timings.get(stage, 0.0) + time.monotonic() - started, 3)
        self.registry.save(g.model_copy(update={"timings_s": timings}))

    def _count(self, number: int, **counts: int) -> None:
        g = self._get(number)
        self.registry.save(g.model_copy(update={"counts": {**g.counts, **counts}}))

    def _open(self, g: Generation) -> tuple[Any, Any]:
        return self._open_settings(generation_settings(self.settings, g))

    def _open_settings(self, settings: Settings) -> tuple[Any, Any]:
        from docket.generations.live import open_generation

        return (self._opener or open_generation)(settings)

    def _drop(self, g: Generation) -> None:
        from docket.search.factory import drop_index

        try:
            if self._opener is None:
                drop_index(generation_settings(self.settings, g))
            else:
                self._open(g)[0].drop()
        except Exception:
            logger.exception("could not delete the index of generation", generation=g.number)

    def _parity(
        self, index: Any
    ) -> tuple[set[tuple[str, str]], set[tuple[str, str]], set[tuple[str, str]]]:
        """(table keys, missing from the new index, extra in it). A chunk written or deleted a
        moment ago may not have reached the index yet (the embed step runs behind the table's
        stream): a difference is checked again until ``reembed_gate_settle_seconds`` have
        passed; what remains after that is a failure."""
        deadline = time.monotonic() + self.settings.reembed_gate_settle_seconds
        while True:
            table = {(c.tenant, c.chunk_id) for c in scan_chunks(self.chunks)}
            held = index.chunk_keys()
            missing, extra = table - held, held - table
            if (not missing and not extra) or time.monotonic() >= deadline:
                return table, missing, extra
            time.sleep(0.5)

    def _quality(self, settings: Settings, golden: dict[str, str]) -> dict[str, float]:
        return quality(settings, golden, *self._open_settings(settings))

    def _shards(self, number: int) -> list[str]:
        return [f"part-{i:05d}.jsonl" for i in range(self._get(number).counts.get("shards", 0))]

    def _records(self, number: int, shard: str) -> list[ChunkRecord]:
        data = self.objects.get(self.bucket, f"{_prefix(number)}/records/{shard}")
        return [ChunkRecord.model_validate_json(line) for line in data.splitlines() if line]


def _bulk_loading(index: Any, on: bool) -> None:
    """OpenSearch's load-time settings (the embedded index has none)."""
    switch = getattr(index, "bulk_loading", None)
    if switch is not None:
        switch(on)


def _onnx_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _cause(cause: str) -> str:
    """The Lambda error's message out of Step Functions' Cause (a JSON document) when it is one."""
    try:
        data = json.loads(cause)
    except (TypeError, ValueError):
        return cause
    if isinstance(data, dict):
        return str(data.get("errorMessage") or data.get("Cause") or cause)
    return cause


def _check_golden(golden: dict[str, str]) -> None:
    folder = Path(golden.get("dir") or "")
    if not (folder / "queries.jsonl").is_file():
        raise InvalidRequest(f"the golden set {folder} has no queries.jsonl")
    if not golden.get("tenant"):
        raise InvalidRequest("the golden set needs the tenant whose documents it judges")


def recall_at(run: dict[str, list[str]], qrels: dict[str, dict[str, int]], k: int) -> float:
    values = []
    for query, judged in qrels.items():
        relevant = {d for d, grade in judged.items() if grade > 0}
        if relevant:
            values.append(len(relevant & set(run.get(query, [])[:k])) / len(relevant))
    return float(np.mean(values)) if values else 0.0


def quality(
    settings: Settings, golden: dict[str, str], index: Any, embedder: Any
) -> dict[str, float]:
    """nDCG@10 and Recall@50 of one generation on the golden set, through the query path's
    retriever and fusion for that generation."""
    from docket.evaluation.beir import load_beir
    from docket.evaluation.metrics import evaluate
    from docket.evaluation.tune import collect, fused_run
    from docket.models import SearchFilter, document_id_for
    from docket.search.retrieval import fusion_for, retriever_for

    dataset = load_beir(Path(golden["dir"]), golden.get("split") or "test")
    tenant = golden["tenant"]
    judged = {d for docs in dataset.qrels.values() for d, grade in docs.items() if grade > 0}
    if not any(index.count_document(tenant, document_id_for(tenant, d)) for d in judged):
        raise GateFailed(
            f"none of the {len(judged)} documents the golden set judges is in the index under "
            f"tenant {tenant!r}: a gate that measures nothing passes nothing (qrels name "
            "documents by their source)"
        )
    retriever = retriever_for(settings, index, embedder)
    lists = collect(retriever, dataset, SearchFilter(tenant=golden["tenant"]))
    run = fused_run(fusion_for(settings, index), lists, max(retriever.candidate_k, 50))
    return {
        "ndcg@10": round(evaluate(run, dataset.qrels)["ndcg@10"], 4),
        "recall@50": round(recall_at(run, dataset.qrels, 50), 4),
        "questions": len(dataset.queries),
    }
