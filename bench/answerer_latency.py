"""Latency of ExtractiveAnswerer.answer for 10 hits of about 256 tokens each.

Chunks are SciFact abstracts (about 200-300 words) ranked by the calibration script's BM25 for
each test query, so the sentences and questions are real text.

    .venv/bin/python bench/answerer_latency.py [--data ../shared/data] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from calibrate_answerer import Bm25, load_scifact  # bench/ is on sys.path when run as a script
from docket.answer import ExtractiveAnswerer
from docket.answer.lexical import stem


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get(
        "DOCKET_SHARED_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = args.data / "scifact"
    if not root.is_dir():
        print(f"shared data not found at {args.data} (set DOCKET_SHARED_DATA)", file=sys.stderr)
        return 2
    corpus, queries = load_scifact(root)
    retrieve = Bm25(corpus)
    cases = [(q, retrieve(q, 10, frozenset())) for q in list(queries.values())[:300]]
    cases = [(q, hits) for q, hits in cases if len(hits) == 10]
    words = [len(h.chunk.text.split()) for _, hits in cases for h in hits]
    answerer = ExtractiveAnswerer()

    stem.cache_clear()
    started = time.perf_counter()
    answerer.answer(*cases[0])
    cold_ms = (time.perf_counter() - started) * 1000

    timings = []
    best_per_case = [float("inf")] * len(cases)
    for _ in range(args.repeat):
        for index, (question, hits) in enumerate(cases):
            started = time.perf_counter()
            answerer.answer(question, hits)
            elapsed = (time.perf_counter() - started) * 1000
            timings.append(elapsed)
            best_per_case[index] = min(best_per_case[index], elapsed)
    timings.sort()
    print(
        f"cases={len(cases)} x{args.repeat}  words/chunk median={statistics.median(words):.0f}  "
        f"first call (cold stem cache)={cold_ms:.2f} ms\n"
        f"answer(10 hits): mean={statistics.fmean(timings):.2f} ms  "
        f"p50={timings[len(timings) // 2]:.2f} ms  p95={timings[int(len(timings) * 0.95)]:.2f} ms  "
        f"max={timings[-1]:.2f} ms\n"
        f"best of {args.repeat} per case (less noise from other processes): "
        f"median={statistics.median(best_per_case):.2f} ms  max={max(best_per_case):.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
