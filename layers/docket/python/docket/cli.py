"""The ``docket`` command: ``serve`` runs the local cloud; every other command is an HTTP client of
the API (local or deployed), found with --url / DOCKET_URL and authorised with --token /
DOCKET_TOKEN, or, against the local cloud, with a development token for --tenant/--groups."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8787"
TERMINAL = {"indexed", "failed"}
# a task's statuses (docket.agent.models.TERMINAL_STATUSES; not imported: the CLI stays light)
TASK_TERMINAL = {"succeeded", "failed", "step_limit", "budget_exceeded", "stopped"}
TASK_POLL_SECONDS = 0.5


class CliError(Exception):
    pass


# --- the HTTP client ----------------------------------------------------------------------------------


class Client:
    def __init__(
        self,
        url: str,
        token: str | None,
        tenant: str,
        groups: list[str],
        transport: Any = None,  # an httpx transport; tests pass httpx.MockTransport
        subject: str | None = None,
        scopes: list[str] | None = None,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url, timeout=httpx.Timeout(60.0, connect=5.0), transport=transport
        )
        self._token = token
        self.tenant = tenant
        self.groups = groups
        self.subject = subject
        self.scopes = scopes

    @property
    def token(self) -> str:
        if self._token is None:
            claims: dict[str, Any] = {"tenant": self.tenant, "groups": self.groups}
            if self.subject:
                claims["subject"] = self.subject
            if self.scopes:
                claims["scopes"] = self.scopes
            import httpx

            try:
                resp = self.http.post("/_local/token", json=claims)
            except httpx.HTTPError as exc:
                raise CliError(f"cannot reach {self.url}: {exc}") from exc
            if resp.status_code != 200:
                raise CliError(
                    f"no --token given and {self.url} issued no development token "
                    f"(HTTP {resp.status_code}); pass --token or DOCKET_TOKEN for a deployed API"
                )
            self._token = str(resp.json()["token"])
        return self._token

    def request(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            resp = self.http.request(
                method, path, headers={"authorization": f"Bearer {self.token}"}, **kw
            )
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from exc
        return resp

    @contextmanager
    def stream(self, method: str, path: str, **kw: Any) -> Iterator[Any]:
        """The response with its body still to read (``iter_bytes``), as the server sends it."""
        import httpx

        headers = {"authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        try:
            with self.http.stream(method, path, headers=headers, **kw) as resp:
                yield resp
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from exc

    def json(self, method: str, path: str, ok: Iterable[int] = (200,), **kw: Any) -> Any:
        resp = self.request(method, path, **kw)
        if resp.status_code not in set(ok):
            raise CliError(_error_text(resp))
        return resp.json()


def _error_text(resp: Any) -> str:
    try:
        body = resp.json()
        err = body.get("error") or {}
        msg = err.get("message") or body.get("message") or body.get("detail") or body
    except ValueError:
        msg = resp.text
    return f"HTTP {resp.status_code}: {msg}"


def _client(args: argparse.Namespace, scopes: list[str] | None = None) -> Client:
    return Client(
        args.url or os.environ.get("DOCKET_URL", DEFAULT_URL),
        args.token or os.environ.get("DOCKET_TOKEN"),
        args.tenant,
        _flatten(getattr(args, "groups", None)),
        subject=getattr(args, "subject", None) or os.environ.get("DOCKET_SUBJECT"),
        scopes=scopes,
    )


def _flatten(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(p for p in v.split(",") if p)
    return out


# --- commands ------------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from docket.local.cloud import LocalCloud
    from docket.local.gateway import Gateway

    batch_sizes = {}
    for spec in args.batch_size or []:
        name, _, size = spec.partition("=")
        if not size.isdigit() or int(size) < 1:
            raise CliError(f"--batch-size wants FUNCTION=N, got {spec!r}")
        batch_sizes[name if name.startswith("docket-") else f"docket-{name}"] = int(size)
    if args.api_containers < 1:
        raise CliError("--api-containers must be at least 1")
    cloud = LocalCloud(
        Path(args.data_dir),
        verbose=args.verbose,
        batch_sizes=batch_sizes,
        api_containers=args.api_containers,
    )
    cloud.start(s3_port=args.s3_port or args.port + 1)
    gateway = Gateway(cloud, port=args.port).start()
    print(f"docket local cloud: API {gateway.url}  S3 {cloud.s3_endpoint}  data {cloud.data_dir}")
    print(
        f"AWS endpoint {cloud.s3_endpoint} takes SigV4 signed with the key in "
        f"{cloud.data_dir / 'credentials.json'}"
    )
    print(f"MCP server {gateway.url}/mcp (streamable HTTP, a bearer token as for the API)")
    from docket.wiring import TICKETS_TABLE

    print(
        f"Synced table {TICKETS_TABLE}: rows written at {cloud.s3_endpoint} (boto3, the AWS CLI) "
        "become documents (resolved tickets: docket sync verify)"
    )
    print("Ctrl-C to stop", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    print("stopping: draining the pipeline and saving state...", flush=True)
    gateway.stop()
    cloud.stop()
    return 0


def _collect_files(paths: list[str]) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith("."):
                    files.append((f, f"{p.name}/{f.relative_to(p).as_posix()}"))
        elif p.is_file():
            files.append((p, p.name))
        else:
            raise CliError(f"no such file or folder: {raw}")
    return files


def cmd_ingest(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = Console(stderr=True)
    acl = _flatten(args.acl)
    if acl and not _flatten(args.groups):
        # a restricted document exists only for its groups: against the local cloud, upload
        # (and follow the upload) as a member of them unless --groups says otherwise
        args.groups = acl
    client = _client(args)
    files = _collect_files(args.paths)
    if not files:
        raise CliError("nothing to ingest")
    status: dict[str, dict[str, Any]] = {}
    pending: dict[str, str] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
    ) as progress:
        up = progress.add_task("uploading", total=len(files))
        for path, source in files:
            data = path.read_bytes()
            resp = client.request(
                "POST",
                "/documents",
                json={"source": source, "acl_groups": acl, "size_bytes": len(data)},
            )
            if resp.status_code != 201:
                status[source] = {
                    "status": "failed",
                    "reason": _error_text(resp),
                    "document_id": "-",
                }
            else:
                body = resp.json()
                put = client.http.put(body["upload_url"], content=data)
                if put.status_code >= 300:
                    status[source] = {
                        "status": "failed",
                        "reason": f"upload failed: HTTP {put.status_code}",
                        "document_id": body["document_id"],
                    }
                else:
                    pending[body["document_id"]] = source
                    status[source] = {"status": "pending", "document_id": body["document_id"]}
            progress.advance(up)
        # progress in chunks, so a 300-page PDF moves as its chunks are indexed; a document whose
        # chunk count is not known yet (still being extracted) counts as one
        idx = progress.add_task("indexing", total=len(files))
        chunks: dict[str, tuple[int, int]] = {}  # document id -> (indexed, expected)
        deadline = time.monotonic() + args.timeout
        while pending and time.monotonic() < deadline:
            for doc_id, source in list(pending.items()):
                resp = client.request("GET", f"/documents/{doc_id}")
                if resp.status_code != 200:
                    continue
                doc = resp.json()
                expected = doc.get("chunk_count") or 0
                if doc["status"] in TERMINAL:
                    status[source] = doc
                    del pending[doc_id]
                    chunks[doc_id] = (max(expected, 1), max(expected, 1))
                elif expected:
                    chunks[doc_id] = (doc.get("indexed_chunks") or 0, expected)
            units = [
                chunks.get(doc_id, (0, 1) if doc_id in pending else (1, 1))
                for doc_id in (str(status[source].get("document_id")) for _, source in files)
            ]
            done, total = sum(d for d, _ in units), sum(e for _, e in units)
            waiting = sum(1 for doc_id in pending if doc_id not in chunks)
            progress.update(
                idx,
                completed=done,
                total=total,
                description=(
                    f"indexing {len(files) - len(pending)}/{len(files)} documents"
                    + (f", {waiting} being extracted" if waiting else "")
                    + "; chunks"
                ),
            )
            if pending:
                time.sleep(0.25)
    rows = []
    failed = timed_out = 0
    for _, source in files:
        doc = status[source]
        st = doc.get("status", "?")
        if source in pending.values():
            st = "indexing"  # not failed: it goes on in the background
            timed_out += 1
        elif st != "indexed":
            failed += 1
        reason = doc.get("reason") or ""
        if st == "indexing":
            reason = f"still indexing after {args.timeout:g}s; see `docket docs show`"
        rows.append(
            (source, doc.get("document_id", "-"), st, str(doc.get("chunk_count") or 0), reason)
        )
    columns = ("source", "document", "status", "chunks", "reason")
    if sys.stdout.isatty():
        table = Table(title=f"ingested into tenant {client.tenant}")
        for col in columns:
            # ids are never cut: they are what the other commands take
            table.add_column(col, no_wrap=col == "document", overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:  # piped: one tab-separated line per file, whole
        print("\t".join(columns))
        for row in rows:
            print("\t".join(row))
    summary = f"{len(files) - failed - timed_out} indexed, {failed} failed"
    if timed_out:
        summary += f", {timed_out} still indexing"
    print(summary)
    return 1 if failed or timed_out else 0


def _group_list(value: str) -> list[str]:
    """``--groups a,b`` (or repeated): one value per flag, so the paths after it stay paths."""
    groups = [g.strip() for g in value.split(",") if g.strip()]
    if not groups:
        raise argparse.ArgumentTypeError("give at least one group name")
    return groups


def cmd_ask(args: argparse.Namespace) -> int:
    client = _client(args)
    request = {"question": args.question, "top_k": args.top_k, "mode": args.mode}
    if args.json or args.no_stream:
        body = client.json("POST", "/query", json=request)
        if args.json:
            print(json.dumps(body, indent=2))
        else:
            print_answer(body)
        return 0
    print_sources(ask_streaming(client, request))
    return 0


def ask_streaming(client: Client, request: dict[str, Any]) -> dict[str, Any]:
    """Prints the answer's pieces as they arrive; returns the final response (the done event)."""
    from docket.api import sse

    with client.stream("POST", "/query", json=request, headers={"accept": sse.MEDIA_TYPE}) as resp:
        if resp.status_code != 200:
            resp.read()
            raise CliError(_error_text(resp))
        if not resp.headers.get("content-type", "").startswith(sse.MEDIA_TYPE):
            resp.read()  # a server that does not stream answers with the JSON body
            body: dict[str, Any] = resp.json()
            print(body["answer"])
            return body
        printed = False
        for event in sse.iter_events(sse.iter_lines(resp.iter_bytes())):
            if event.event == "delta":
                print(event.json()["text"], end="", flush=True)
                printed = True
            elif event.event == "done":
                body = event.json()
                if not printed:
                    print(body["answer"], end="")
                print(flush=True)
                return body
            elif event.event == "error":
                error = event.json()
                if printed:
                    print(flush=True)
                raise CliError(f"the answer failed: {error['message']} ({error['code']})")
    raise CliError("the answer stream ended before its done event")


def print_answer(body: dict[str, Any]) -> None:
    print(body["answer"])
    print_sources(body)


def print_sources(body: dict[str, Any]) -> None:
    """The numbered citations, then the retrieval mode and total time."""
    if body.get("citations"):
        print()
        for c in body["citations"]:
            pages = (
                f"p. {c['page_start']}"
                if c["page_start"] == c["page_end"]
                else f"pp. {c['page_start']}-{c['page_end']}"
            )
            print(
                f"  [{c['number']}] {c['source']} ({pages}) doc={c['document_id']} chunk={c['chunk_id']}"
            )
    timings = body.get("timings_ms") or {}
    if timings:
        print(f"\n  ({body.get('mode')} retrieval, {timings.get('total', 0):.0f} ms)")


def cmd_docs(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.docs_cmd == "list":
        docs = client.json("GET", "/documents")["documents"]
        for d in docs:
            print(
                f"{d['document_id']}  {d['status']:<8} {d.get('chunk_count') or 0:>5}  {d['source']}"
            )
        if not docs:
            print("(no documents)", file=sys.stderr)
        return 0
    if args.docs_cmd == "show":
        print(json.dumps(client.json("GET", f"/documents/{args.id}"), indent=2))
        return 0
    client.json("DELETE", f"/documents/{args.id}", ok=(202,))
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        resp = client.request("GET", f"/documents/{args.id}")
        if resp.status_code == 404:
            print(f"deleted {args.id}")
            return 0
        time.sleep(0.2)
    raise CliError(f"{args.id} still being deleted after {args.timeout}s")


def cmd_task(args: argparse.Namespace) -> int:
    client = _client(args)
    request: dict[str, Any] = {"prompt": args.prompt}
    if args.max_steps is not None:
        request["max_steps"] = args.max_steps
    task = client.json("POST", "/tasks", ok=(200, 201, 202), json=request)["task"]
    if not args.json:
        print(task["task_id"])
        print(f"status: {task['status']}", flush=True)
    if not args.wait:
        if args.json:
            print(json.dumps({"task": task}, indent=2))
        return 0
    deadline = time.monotonic() + args.timeout
    while True:
        body = client.json("GET", f"/tasks/{task['task_id']}")
        status = body["task"]["status"]
        if status in TASK_TERMINAL or status == "waiting_approval":
            break
        if time.monotonic() >= deadline:
            raise CliError(f"{task['task_id']} still {status} after {args.timeout:g}s")
        time.sleep(TASK_POLL_SECONDS)
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(f"status: {status}")
        print_task_outcome(body)
    return _task_exit_code(status)


def _task_exit_code(status: str) -> int:
    """0 while the task runs, waits or succeeded; 1 when it ended any other way."""
    return 1 if status in TASK_TERMINAL and status != "succeeded" else 0


def print_task_outcome(body: dict[str, Any]) -> None:
    """The pending approvals and how to decide them, or the answer (or the error)."""
    task = body["task"]
    pending = [a for a in body.get("approvals") or [] if a.get("status", "pending") == "pending"]
    if pending:
        print("waiting for approval:")
        for approval in pending:
            print(f"  {approval['approval_id']}  {approval['tool']}")
            for label, value in _summary_pairs(approval):
                print(f"      {label}: {_one_line(value, 200)}")
        for approval in pending:
            print(
                f"approve: docket approvals approve {approval['approval_id']}"
                f"   (or: docket approvals deny {approval['approval_id']})"
            )
    if task.get("answer"):
        print(task["answer"])
    if task.get("error"):
        print(f"error: {task['error']}")


def cmd_tasks(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.tasks_cmd == "stop":
        task = client.json("DELETE", f"/tasks/{args.id}", ok=(200, 202))["task"]
        print(f"{task['task_id']}  {task['status']}")
        return 0
    body = client.json("GET", f"/tasks/{args.id}")
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    task = body["task"]
    print(
        f"{task['task_id']}  {task['status']}  steps {task.get('steps', 0)}"
        f"  tokens {task.get('input_tokens', 0)} in / {task.get('output_tokens', 0)} out"
    )
    for step in body.get("timeline") or []:
        print(_timeline_line(step))
    print_task_outcome(body)
    return 0


def _timeline_line(step: dict[str, Any]) -> str:
    """seq, kind, tool or model, status, latency, tokens, a preview of the result."""
    name = step.get("tool") or step.get("model") or "-"
    tokens = (
        f"{step.get('input_tokens', 0)}/{step.get('output_tokens', 0)} tok"
        if step.get("kind") == "model"
        else "-"
    )
    preview = step.get("result") or step.get("output_text") or step.get("detail") or ""
    if not preview and step.get("tool_calls"):
        preview = "calls " + ", ".join(str(c.get("name", "?")) for c in step["tool_calls"])
    return (
        f"{step.get('seq', 0):>4}  {step.get('kind', '?'):<8} {name:<24} "
        f"{step.get('status', '?'):<8} {step.get('latency_ms') or 0:>7.0f} ms  {tokens:>14}  "
        f"{_one_line(preview, 72)}"
    ).rstrip()


def cmd_models(args: argparse.Namespace) -> int:
    from docket.generations.models import MODELS

    for m in MODELS.values():
        print(f"{m.name:24}  {m.description}")
    return 0


def _generation_line(g: dict[str, Any]) -> str:
    stage = f"  stage {g['stage']}" if g.get("stage") and g["state"] == "building" else ""
    gate = g.get("gate") or {}
    quality = gate.get("quality") or {}
    figures = "  ".join(
        f"{name} nDCG@10 {q['ndcg@10']:.4f} R@50 {q['recall@50']:.4f}"
        for name, q in quality.items()
    )
    chunks = f"  {gate['chunks']} chunks" if "chunks" in gate else ""
    reason = f"  ({g['reason']})" if g.get("reason") else ""
    return (
        f"g{g['number']}  {g['state']:8}  {g['model']}{stage}{chunks}  {figures}{reason}".rstrip()
    )


def cmd_keys(args: argparse.Namespace) -> int:
    """API keys of the caller's tenant (tenant administrators): create, list, revoke."""
    client = _client(args, scopes=["admin"])
    if args.keys_cmd == "create":
        request = {"name": args.name, "scopes": _flatten(args.scopes), "groups": args.groups}
        body = client.json("POST", "/keys", ok=(201,), json=request)
        if args.json:
            print(json.dumps(body, indent=2))
            return 0
        record = body["record"]
        print(body["key"])  # stdout: the key alone, for `KEY=$(docket keys create ...)`
        print(
            f"created {record['key_id']} ({record['name']}): scopes "
            f"{','.join(record['scopes'])}; groups {','.join(record['groups']) or '-'}. "
            "The key is shown only now.",
            file=sys.stderr,
        )
        return 0
    if args.keys_cmd == "list":
        keys = client.json("GET", "/keys")["keys"]
        if args.json:
            print(json.dumps(keys, indent=2))
            return 0
        for k in keys:
            state = f"revoked {k['revoked_at']}" if k.get("revoked_at") else "active"
            print(
                f"{k['key_id']}  {state:8}  {k['name']}  scopes={','.join(k['scopes'])}  "
                f"groups={','.join(k['groups']) or '-'}  created {k['created_at']}"
            )
        return 0
    record = client.json("DELETE", f"/keys/{args.key_id}")
    print(f"revoked {record['key_id']} ({record['name']}) at {record['revoked_at']}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """A synced source table (tenant administrators): verify and repair, or backfill."""
    client = _client(args, scopes=["admin"])
    if args.sync_cmd == "verify":
        body = client.json("POST", f"/sync/{args.source}/verify", json={"repair": not args.dry_run})
        if args.json:
            print(json.dumps(body, indent=2))
            return 0
        repaired = body["repaired"]
        verb = "to repair" if args.dry_run else "repaired"
        print(
            f"{body['source']} ({body['tenant']}): {body['rows']} rows, {body['in_sync']} in sync, "
            f"{body['pending']} in the pipeline; {verb}: {repaired['missing']} missing, "
            f"{repaired['stale']} stale, {repaired['orphaned']} orphaned"
        )
        for skipped in body["skipped"]:
            print(f"skipped {skipped['item_id']}: {skipped['reason']}")
        return 0
    run = client.json("POST", f"/sync/{args.source}/backfill", ok=(202,))
    print(f"backfill {run['run']} started")
    if not args.wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        status = client.json("GET", f"/sync/{args.source}/backfills/{run['run']}")["status"]
        if status != "RUNNING":
            print(f"backfill {run['run']}: {status}")
            return 0 if status == "SUCCEEDED" else 1
        time.sleep(0.5)
    print(f"backfill {run['run']} still running after {args.timeout:.0f} s", file=sys.stderr)
    return 1


def cmd_index(args: argparse.Namespace) -> int:
    client = _client(args, scopes=["admin"])
    if args.index_cmd == "status":
        body = client.json("GET", "/index/status")
        if args.json:
            print(json.dumps(body, indent=2))
            return 0
        print("live:     " + _generation_line(body["live"]))
        if body.get("building"):
            print("building: " + _generation_line(body["building"]))
        for g in body["generations"]:
            if g["state"] not in ("live", "building"):
                print("          " + _generation_line(g))
        return 0
    if args.index_cmd == "rollback":
        live = client.json("POST", "/index/rollback")["live"]
        print(f"rolled back: g{live['number']} ({live['model']}) is live")
        return 0
    request: dict[str, Any] = {"model": args.model}
    if args.golden:
        request["golden_dir"] = str(Path(args.golden).resolve())
        request["golden_tenant"] = args.golden_tenant or args.tenant
    g = client.json("POST", "/index/generations", ok=(202,), json=request)["generation"]
    print(f"building g{g['number']} with {g['model']}")
    if not args.wait:
        return 0
    return _wait_for_generation(client, int(g["number"]), args.timeout)


def _wait_for_generation(client: Client, number: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        body = client.json("GET", "/index/status")
        g = next((x for x in body["generations"] if x["number"] == number), None)
        if g is None:
            raise CliError(f"generation {number} is not recorded")
        if g["state"] == "building":
            if g.get("stage") != seen:
                seen = g.get("stage")
                print(f"  {seen}", file=sys.stderr, flush=True)
            time.sleep(0.5)
            continue
        print(_generation_line(g))
        if g["state"] == "live":
            timings = "  ".join(f"{k} {v:.1f}s" for k, v in (g.get("timings_s") or {}).items())
            print(f"cut over: g{number} is live  ({timings})")
            return 0
        print(
            f"docket: the rebuild of g{number} ended {g['state']}: {g.get('reason')}",
            file=sys.stderr,
        )
        return 1
    raise CliError(f"generation {number} still building after {timeout:.0f} s")


def cmd_approvals(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.approvals_cmd == "list":
        approvals = client.json("GET", "/approvals")["approvals"]
        if args.json:
            print(json.dumps(approvals, indent=2))
            return 0
        for a in approvals:
            print(f"{a['approval_id']}  {a['task_id']}  {a['tool']}  {_summary_text(a)}".rstrip())
        if not approvals:
            print("no pending approvals", file=sys.stderr)
        return 0
    decision = "approve" if args.approvals_cmd == "approve" else "deny"
    request: dict[str, Any] = {"decision": decision}
    if args.comment:
        request["comment"] = args.comment
    resp = client.request("POST", f"/approvals/{args.id}/decision", json=request)
    if resp.status_code == 409:
        print(
            f"docket: cannot {decision} {args.id}: it is no longer pending (already decided, "
            f"expired, or its task ended); {_error_text(resp)}",
            file=sys.stderr,
        )
        return 1
    if resp.status_code == 403:
        raise CliError(
            f"{_error_text(resp)} (deciding approvals needs a token with scope approvals)"
        )
    if resp.status_code != 200:
        raise CliError(_error_text(resp))
    approval = resp.json()["approval"]
    print(
        f"{approval['approval_id']}  {approval['status']}  task {approval['task_id']}  "
        f"{approval['tool']}"
    )
    return 0


def _summary_pairs(approval: dict[str, Any]) -> list[tuple[str, str]]:
    """The approval's (label, value) lines; its arguments when it carries no summary."""
    pairs = approval.get("summary") or list((approval.get("arguments") or {}).items())
    out: list[tuple[str, str]] = []
    for label, value in pairs:
        if isinstance(value, str) and value[:1] == "[":
            with suppress(ValueError):  # default summaries hold lists as JSON text
                value = json.loads(value)
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif not isinstance(value, str):
            value = json.dumps(value)
        out.append((str(label), value))
    return out


def _summary_text(approval: dict[str, Any], limit: int = 160) -> str:
    """``to=legal@example.com subject=...``: the summary on one line."""
    parts = [
        f"{label.strip().lower().replace(' ', '_')}={_one_line(value, 60)}"
        for label, value in _summary_pairs(approval)
    ]
    return _one_line(" ".join(parts), limit)


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def cmd_model(args: argparse.Namespace) -> int:
    from docket.config import get_settings
    from docket.embedding.onnx_export import ensure_exported

    settings = get_settings()
    started = time.perf_counter()
    path = ensure_exported(
        settings.model_dir, settings.embedding_model, args.precision or settings.embedding_precision
    )
    print(f"embedding model ready in {path} ({time.perf_counter() - started:.1f}s)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from docket.local.demo import run_demo

    return run_demo(keep=args.keep, data_dir=args.data_dir)


# --- argument parsing ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docket", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def client_opts(p: argparse.ArgumentParser, groups: bool = True) -> None:
        p.add_argument("--url", help=f"API URL (DOCKET_URL, default {DEFAULT_URL})")
        p.add_argument("--token", help="bearer token (DOCKET_TOKEN); local cloud: issued for you")
        p.add_argument(
            "--tenant",
            default=os.environ.get("DOCKET_TENANT", "default"),
            help="local cloud: the development token's tenant (DOCKET_TENANT; %(default)s); "
            "a deployed API takes the tenant from --token",
        )
        if groups:
            p.add_argument(
                "--groups",
                type=_group_list,
                action="extend",
                default=[],
                metavar="G[,G...]",
                help="caller's groups (repeat or separate with commas)",
            )
        p.add_argument(
            "--as",
            dest="subject",
            default=None,
            metavar="WHO",
            help="local cloud: who the development token names (DOCKET_SUBJECT; "
            "default dev-user@TENANT)",
        )

    p = sub.add_parser("serve", help="run the local cloud and its HTTP API")
    p.add_argument("--port", type=int, default=8787, help="the API's port (%(default)s)")
    p.add_argument("--s3-port", type=int, default=None, help="local S3 endpoint (default port+1)")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("DOCKET_DATA_DIR", ".docket/data"),
        help="where tables, objects and the index persist (DOCKET_DATA_DIR; %(default)s)",
    )
    p.add_argument("--verbose", action="store_true", help="function logs and metrics on stdout")
    p.add_argument(
        "--api-containers",
        type=int,
        default=4,
        metavar="N",
        help="API requests served at once, as Lambda scales out (%(default)s)",
    )
    p.add_argument(
        "--batch-size",
        action="append",
        metavar="FUNCTION=N",
        help="event source batch size, e.g. embed=32 (default: the wiring's)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ingest", help="upload files or folders and wait until they are indexed")
    p.add_argument("paths", nargs="+")
    client_opts(p)
    p.add_argument(
        "--acl",
        type=_group_list,
        action="extend",
        default=[],
        metavar="G[,G...]",
        help="groups that may read them (repeat or separate with commas)",
    )
    p.add_argument(
        "--timeout", type=float, default=1800, help="seconds to wait for indexing (%(default)s)"
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="ask a question; prints the answer with citations")
    p.add_argument("question")
    client_opts(p)
    p.add_argument("--json", action="store_true", help="print the API's response body")
    p.add_argument(
        "--no-stream",
        action="store_true",
        help="one JSON request instead of printing the answer as it streams in",
    )
    p.add_argument("--top-k", type=int, default=10, help="chunks retrieved (%(default)s)")
    p.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("docs", help="list, show or delete documents")
    dsub = p.add_subparsers(dest="docs_cmd", required=True)
    for name in ("list", "show", "delete"):
        dp = dsub.add_parser(name)
        if name != "list":
            dp.add_argument("id")
        client_opts(dp)
        if name == "delete":
            dp.add_argument(
                "--timeout",
                type=float,
                default=120,
                help="seconds to wait for the chunks to leave the index (%(default)s)",
            )
        dp.set_defaults(func=cmd_docs)

    p = sub.add_parser("task", help="start an agent task; --wait follows it to its end")
    p.add_argument("prompt")
    client_opts(p)
    p.add_argument("--max-steps", type=int, default=None, help="model calls at most")
    p.add_argument(
        "--wait", action="store_true", help="poll until it ends or waits for an approval"
    )
    p.add_argument("--timeout", type=float, default=300, help="seconds --wait waits at most")
    p.add_argument("--json", action="store_true", help="print the API's response body")
    p.set_defaults(func=cmd_task)

    p = sub.add_parser("tasks", help="show an agent task and its timeline, or stop it")
    tsub = p.add_subparsers(dest="tasks_cmd", required=True)
    tp = tsub.add_parser("show")
    tp.add_argument("id")
    client_opts(tp)
    tp.add_argument("--json", action="store_true", help="print the API's response body")
    tp.set_defaults(func=cmd_tasks)
    tp = tsub.add_parser("stop", help="stop the task (pending approvals are cancelled)")
    tp.add_argument("id")
    client_opts(tp)
    tp.set_defaults(func=cmd_tasks)

    p = sub.add_parser("approvals", help="list, approve or deny pending tool calls")
    asub = p.add_subparsers(dest="approvals_cmd", required=True)
    ap = asub.add_parser("list", help="pending approvals, oldest first, one per line")
    client_opts(ap)
    ap.add_argument("--json", action="store_true", help="print the API's response body")
    ap.set_defaults(func=cmd_approvals)
    for name in ("approve", "deny"):
        ap = asub.add_parser(name)
        ap.add_argument("id")
        client_opts(ap)
        ap.add_argument("--comment", default=None, help="why, recorded with the decision")
        ap.set_defaults(func=cmd_approvals)

    p = sub.add_parser("keys", help="API keys of your tenant: create, list, revoke (admin)")
    ksub = p.add_subparsers(dest="keys_cmd", required=True)
    kp = ksub.add_parser("create", help="a new key; prints it (shown only this once)")
    kp.add_argument("--name", required=True, help="what the key is for")
    kp.add_argument(
        "--scopes",
        action="append",
        required=True,
        metavar="S[,S...]",
        help="query, ingest, tasks, approvals, admin (repeat or separate with commas)",
    )
    client_opts(kp)
    kp.add_argument("--json", action="store_true", help="print the API's response body")
    kp.set_defaults(func=cmd_keys)
    kp = ksub.add_parser("list", help="the tenant's keys, revoked ones included")
    client_opts(kp)
    kp.add_argument("--json", action="store_true", help="print the API's response body")
    kp.set_defaults(func=cmd_keys)
    kp = ksub.add_parser("revoke", help="revoke a key by its id")
    kp.add_argument("key_id")
    client_opts(kp)
    kp.set_defaults(func=cmd_keys)

    p = sub.add_parser("sync", help="a synced source table: verify and repair, backfill (admin)")
    ssub = p.add_subparsers(dest="sync_cmd", required=True)
    sp = ssub.add_parser("verify", help="compare your tenant's rows with its documents, repair")
    sp.add_argument("--source", default="tickets", help="the sync source (%(default)s)")
    sp.add_argument("--dry-run", action="store_true", help="report the drift, repair nothing")
    client_opts(sp)
    sp.add_argument("--json", action="store_true", help="print the API's response body")
    sp.set_defaults(func=cmd_sync)
    sp = ssub.add_parser("backfill", help="sync every row already in the table")
    sp.add_argument("--source", default="tickets", help="the sync source (%(default)s)")
    sp.add_argument("--wait", action="store_true", help="follow it to its end")
    sp.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits")
    client_opts(sp)
    sp.set_defaults(func=cmd_sync)

    p = sub.add_parser("models", help="the embedding models an index generation can use")
    msub = p.add_subparsers(dest="models_cmd", required=True)
    msub.add_parser("list", help="name and description, one per line").set_defaults(func=cmd_models)

    p = sub.add_parser(
        "index", help="index generations: status, rebuild with another model, rollback (admin)"
    )
    isub = p.add_subparsers(dest="index_cmd", required=True)
    ip = isub.add_parser("status", help="the live generation and any being built")
    client_opts(ip)
    ip.add_argument("--json", action="store_true", help="print the API's response body")
    ip.set_defaults(func=cmd_index)
    ip = isub.add_parser("rebuild", help="build a generation with --model, gate it, cut over")
    ip.add_argument("--model", required=True, help="a name from `docket models list`")
    ip.add_argument(
        "--golden", default=None, metavar="DIR", help="a BEIR folder the gate measures both on"
    )
    ip.add_argument(
        "--golden-tenant", default=None, help="whose documents it judges (default: --tenant)"
    )
    ip.add_argument("--wait", action="store_true", help="follow the build to its end")
    ip.add_argument(
        "--timeout", type=float, default=3600, help="seconds --wait waits (%(default)s)"
    )
    client_opts(ip)
    ip.set_defaults(func=cmd_index)
    ip = isub.add_parser("rollback", help="make the previous generation live again")
    client_opts(ip)
    ip.set_defaults(func=cmd_index)

    p = sub.add_parser("model", help="prepare the local embedding model")
    msub = p.add_subparsers(dest="model_cmd", required=True)
    mp = msub.add_parser("export", help="export all-MiniLM-L6-v2 to ONNX (once)")
    mp.add_argument(
        "--precision",
        choices=["fp32", "int8"],
        default=None,
        help="int8: also write the quantized generation (default: DOCKET_EMBEDDING_PRECISION)",
    )
    mp.set_defaults(func=cmd_model)

    p = sub.add_parser("demo", help="start a local cloud, ingest samples, ask, stop")
    p.add_argument("--keep", action="store_true", help="keep the demo's data directory")
    p.add_argument(
        "--data-dir", default=None, help="keep the demo's data here (default: a temp dir)"
    )
    p.set_defaults(func=cmd_demo)

    from docket.evaluation.cli import add_parser as add_eval_parser

    add_eval_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from docket.evaluation.beir import DatasetError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, DatasetError) as exc:
        print(f"docket: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
