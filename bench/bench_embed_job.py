"""Throughput of the re-embedding job's entry point (jobs/embed) on this machine's CPU.

SciFact's chunks (the project's chunking, contextual headers included) are written as input
shards, exactly as the snapshot step writes them, then ``jobs/embed/entry.py transform`` embeds
them with fp32 and int8 at several batch sizes, each in a fresh process. Prints passages/s per
configuration; ``--json OUT`` keeps them.

Usage: python bench/bench_embed_job.py [--limit N] [--batch-sizes 16,32,64] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DOCKET_SHARED_DATA", ROOT.parent / "shared" / "data"))


def write_shards(folder: Path, limit: int, per_shard: int = 1000) -> int:
    from docket.chunking.context import embedding_input
    from docket.config import get_settings
    from docket.embedding.batch_job import input_line
    from docket.evaluation.beir import load_beir
    from docket.evaluation.indexing import chunk_corpus

    dataset = load_beir(SHARED / "scifact", "test")
    corpus = list(dataset.corpus.values())[: limit or None]
    chunks = chunk_corpus(corpus, get_settings())
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(chunks), per_shard):
        part = chunks[start : start + per_shard]
        (folder / f"part-{start // per_shard:05d}.jsonl").write_text(
            "".join(f"{input_line(c.chunk_id, c.tenant, embedding_input(c))}\n" for c in part)
        )
    return len(chunks)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=2000, help="SciFact documents (0 = all)")
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (SHARED / "scifact").is_dir():
        print(f"SciFact not found under {SHARED}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="docket-embed-job-"))
    passages = write_shards(work / "input", args.limit)
    print(
        f"{passages} passages from {args.limit or 'all'} SciFact documents; CPU cores: {os.cpu_count()}"
    )
    results = []
    for precision in ("fp32", "int8"):
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            env = {
                **os.environ,
                "DOCKET_EMBEDDING_PRECISION": precision,
                "DOCKET_EMBEDDING_BATCH_SIZE": str(batch),
            }
            out = work / f"out-{precision}-{batch}"
            run = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "jobs/embed/entry.py"),
                    "transform",
                    "--input",
                    str(work / "input"),
                    "--output",
                    str(out),
                ],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            summary = json.loads(run.stdout.strip().splitlines()[-1])
            row = {"precision": precision, "batch_size": batch, **summary}
            results.append(row)
            print(f"  {precision} batch {batch:>3}: {summary['records_per_s']:7.1f} passages/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"passages": passages, "device": "cpu", "runs": results}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
