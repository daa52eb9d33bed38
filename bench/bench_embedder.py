"""Throughput of the local embedding model (OnnxEmbedder) on real passages.

Embeds the first 512 SciFact passages (title + text, most of them truncated at 256 tokens) with
the exported graph that OnnxEmbedder uses (fused by onnxruntime's transformer optimizer when that
matched) and, in the same run, with the plain unfused graph, at batch sizes 16 and 32, and prints
passages per second and the fused / plain ratio (see ``measure`` for how load from other
processes on a shared machine is kept out of the comparison).

    .venv/bin/python bench/bench_embedder.py [--limit 512] [--threads 0] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from docket.embedding.onnx import OnnxEmbedder

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    Path(os.environ.get("DOCKET_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    / "scifact"
    / "corpus.jsonl"
)


def load_passages(path: Path, limit: int) -> list[str]:
    passages = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            passages.append(f"{record.get('title', '')} {record.get('text', '')}".strip())
            if len(passages) == limit:
                break
    return passages


def measure(
    embedders: dict[str, OnnxEmbedder], passages: list[str], batch_size: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Passages per second of each variant: (least-disturbed, median wall clock).

    The passages are sorted by token count and cut into batches, as OnnxEmbedder does inside one
    call, and each batch is timed on its own. The variants take turns on every batch, and each
    batch counts its fastest of ``rounds`` runs: on a shared machine, load from other processes
    then hits both variants alike and drops out of the first figure. The second figure is the
    median over rounds of the plain end-to-end time, load included.
    """
    probe = next(iter(embedders.values()))
    tokens = probe.count_tokens(passages)
    ordered = [p for _, p in sorted(zip(tokens, passages, strict=True), key=lambda t: -t[0])]
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    for embedder in embedders.values():
        embedder.embed_documents(batches[0])  # warm-up: arenas, caches
    best = {name: [float("inf")] * len(batches) for name in embedders}
    totals: dict[str, list[float]] = {name: [0.0] * rounds for name in embedders}
    for round_ in range(rounds):
        for index, batch in enumerate(batches):
            for name, embedder in embedders.items():
                started = time.perf_counter()
                embedder.embed_documents(batch)
                elapsed = time.perf_counter() - started
                best[name][index] = min(best[name][index], elapsed)
                totals[name][round_] += elapsed
    return {
        name: (len(passages) / sum(best[name]), len(passages) / statistics.median(totals[name]))
        for name in embedders
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads, 0 = default")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    args = parser.parse_args()

    from docket.embedding.onnx_export import ensure_exported, export_model, resolve_source

    passages = load_passages(args.data, args.limit)
    started = time.perf_counter()
    optimized_dir = ensure_exported()
    print(f"model: {optimized_dir} (ready in {time.perf_counter() - started:.1f}s)")

    with tempfile.TemporaryDirectory(prefix="docket-plain-") as plain_dir:
        started = time.perf_counter()
        manifest = json.loads((optimized_dir / "manifest.json").read_text())
        export_model(resolve_source(), Path(plain_dir), name=manifest["name"], fuse=False)
        print(f"plain graph exported in {time.perf_counter() - started:.1f}s")

        probe = OnnxEmbedder(optimized_dir)
        tokens = probe.count_tokens(passages)
        truncated = sum(t >= probe.max_seq_length for t in tokens)
        print(
            f"passages: {len(passages)} from {args.data}; tokens mean "
            f"{statistics.mean(tokens):.0f}, median {statistics.median(tokens):.0f}, "
            f"{truncated} truncated at {probe.max_seq_length}; cpu count {os.cpu_count()}"
        )
        print(f"optimized graph: {probe.export_method} {manifest.get('fused_operators')}")
        del probe

        print(
            f"{'batch':>5}  {'optimized p/s':>13}  {'plain p/s':>9}  {'ratio':>5}"
            f"  | wall clock: {'optimized':>9}  {'plain':>5}"
        )
        for batch_size in args.batch_sizes:
            rates = measure(
                {
                    name: OnnxEmbedder(path, batch_size=batch_size, threads=args.threads)
                    for name, path in (("optimized", optimized_dir), ("plain", Path(plain_dir)))
                },
                passages,
                batch_size,
                args.rounds,
            )
            (fast, fast_wall), (slow, slow_wall) = rates["optimized"], rates["plain"]
            print(
                f"{batch_size:>5}  {fast:>13.1f}  {slow:>9.1f}  {fast / slow:>5.2f}"
                f"  |             {fast_wall:>9.1f}  {slow_wall:>5.1f}"
            )
        load = os.getloadavg() if hasattr(os, "getloadavg") else ()
        print(f"load average after the run: {', '.join(f'{x:.1f}' for x in load)}")


if __name__ == "__main__":
    main()
