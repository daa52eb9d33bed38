"""The re-embedding job: JSON lines of chunks in, JSON lines of vectors out, in the same order.

One piece of work with two ways to run it (the entry point is ``jobs/embed/entry.py``):

- **SageMaker Batch Transform** (``serve``): the container answers ``GET /ping`` and
  ``POST /invocations``. With ``SplitType=Line`` and ``BatchStrategy=MultiRecord`` each request
  body is a run of whole input lines, and the response must be one output line per input line,
  in order (``AssembleWith=Line`` joins them into ``<input file>.out``).
- **Files** (``transform_dir``): every ``*.jsonl`` file of an input folder becomes ``<name>.out``
  in the output folder, exactly as Batch Transform names its outputs. The local cloud runs this on
  the job's recorded S3 prefixes, because moto only records SageMaker jobs.

Input line: ``{"chunk_id": "...", "tenant": "...", "text": "..."}`` (``text`` is what the model
reads: the chunk with its contextual header). Output line: ``{"chunk_id": "...", "vector": [...]}``
with float32 values written with 9 significant digits, which read back to the same float32.

A malformed line fails the whole request or file with ``MalformedLine`` naming the file and line
number: a job must not write an output that silently lacks a chunk.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from docket.embedding.port import Embedder
from docket.errors import DocketError

# Texts per model call inside one request or file (the embedder sorts and pads per call).
BLOCK = 256
# SageMaker caps a request at MaxPayloadInMB (6 MB by default); we refuse more than this.
MAX_REQUEST_BYTES = 100 * 1024 * 1024


class MalformedLine(DocketError):
    """An input line that is not a JSON object with a string chunk_id and text."""

    code = "malformed_line"
    permanent = True

    def __init__(self, source: str, line: int, why: str) -> None:
        super().__init__(f"{source} line {line}: {why}")
        self.source = source
        self.line = line


@dataclass(frozen=True)
class InputRecord:
    chunk_id: str
    tenant: str
    text: str


@dataclass
class JobStats:
    files: int = 0
    records: int = 0
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def input_line(chunk_id: str, tenant: str, text: str) -> str:
    """One input line (what the snapshot step writes)."""
    return json.dumps({"chunk_id": chunk_id, "tenant": tenant, "text": text}, ensure_ascii=False)


def parse_lines(data: bytes | str, *, source: str = "request") -> list[InputRecord]:
    """Every non-blank line of ``data`` as an input record; the first bad one raises."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    records: list[InputRecord] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MalformedLine(source, number, f"not JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise MalformedLine(source, number, "not a JSON object")
        chunk_id, tenant, body = value.get("chunk_id"), value.get("tenant", ""), value.get("text")
        if not isinstance(chunk_id, str) or not chunk_id:
            raise MalformedLine(source, number, "chunk_id missing or not a string")
        if not isinstance(body, str):
            raise MalformedLine(source, number, "text missing or not a string")
        if not isinstance(tenant, str):
            raise MalformedLine(source, number, "tenant is not a string")
        records.append(InputRecord(chunk_id=chunk_id, tenant=tenant, text=body))
    return records


def output_line(chunk_id: str, vector: np.ndarray) -> str:
    values = ",".join(f"{float(x):.9g}" for x in np.asarray(vector, dtype=np.float32))
    return f'{{"chunk_id": {json.dumps(chunk_id)}, "vector": [{values}]}}'


def read_output_line(line: str) -> tuple[str, np.ndarray]:
    """(chunk_id, float32 vector) of one output line (what the load step reads)."""
    value = json.loads(line)
    return str(value["chunk_id"]), np.asarray(value["vector"], dtype=np.float32)


def embed_records(embedder: Embedder, records: Sequence[InputRecord]) -> list[str]:
    """Output lines for ``records``, in their order."""
    lines: list[str] = []
    for start in range(0, len(records), BLOCK):
        block = records[start : start + BLOCK]
        vectors = embedder.embed_documents([r.text for r in block])
        lines.extend(output_line(r.chunk_id, v) for r, v in zip(block, vectors, strict=True))
    return lines


def transform_file(embedder: Embedder, source: Path, target: Path) -> int:
    """Embed one input file into ``target`` (written whole, then renamed into place)."""
    records = parse_lines(source.read_bytes(), source=source.name)
    lines = embed_records(embedder, records)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    os.replace(partial, target)
    return len(records)


def transform_dir(embedder: Embedder, input_dir: Path, output_dir: Path) -> JobStats:
    """Batch Transform's file layout: ``input_dir/*.jsonl`` → ``output_dir/<name>.out``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stats = JobStats()
    started = time.perf_counter()
    for source in sorted(Path(input_dir).glob("*.jsonl")):
        target = output_dir / f"{source.name}.out"
        stats.records += transform_file(embedder, source, target)
        stats.files += 1
        stats.outputs.append(target.name)
    stats.seconds = time.perf_counter() - started
    return stats


def iter_outputs(output_dir: Path) -> Iterable[tuple[str, np.ndarray]]:
    """Every (chunk_id, vector) of a finished job's output folder."""
    for path in sorted(Path(output_dir).glob("*.out")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield read_output_line(line)


# --- SageMaker's container contract ------------------------------------------------------------


def make_server(embedder: Embedder, host: str = "0.0.0.0", port: int = 8080) -> ThreadingHTTPServer:
    """``GET /ping`` (200 once the model is loaded) and ``POST /invocations`` (lines in, lines
    out; 400 with the line number for a malformed line, 413 for an oversized body)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "docket-embed-job"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the job logs totals
            return

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/ping":
                self._send(200, b"{}", "application/json")
            else:
                self._send(404, b'{"error": "not found"}', "application/json")

        def do_POST(self) -> None:
            if self.path != "/invocations":
                self._send(404, b'{"error": "not found"}', "application/json")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                self._send(400, b'{"error": "bad Content-Length"}', "application/json")
                return
            if length < 0 or length > MAX_REQUEST_BYTES:
                self._send(413, b'{"error": "request too large"}', "application/json")
                return
            try:
                records = parse_lines(self.rfile.read(length))
            except (MalformedLine, UnicodeDecodeError) as exc:
                body = json.dumps({"error": str(exc)}).encode()
                self._send(400, body, "application/json")
                return
            lines = embed_records(embedder, records)
            self._send(200, "".join(f"{x}\n" for x in lines).encode(), "application/jsonlines")

    return ThreadingHTTPServer((host, port), Handler)
