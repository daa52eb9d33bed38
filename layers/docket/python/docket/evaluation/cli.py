"""``docket eval retrieval`` and ``docket eval answers`` (argument parsing and orchestration)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from docket.config import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="measure retrieval and answer quality on a BEIR dataset")
    esub = p.add_subparsers(dest="eval_command", required=True)

    r = esub.add_parser("retrieval", help="nDCG@10, Recall@10/100, MRR@10 and latency per mode")
    r.add_argument("--dataset", type=Path, required=True, help="a BEIR-layout folder")
    r.add_argument("--split", default="test", help="qrels/SPLIT.tsv (default: test)")
    r.add_argument(
        "--modes",
        default="bm25,dense,hybrid,hybrid+rerank",
        help="comma-separated: bm25, dense, hybrid, hybrid+rerank",
    )
    r.add_argument("--json", type=Path, help="write the results as JSON here")
    r.add_argument("--plot", type=Path, help="write a bar chart (PNG) comparing the modes")
    r.add_argument("--depth", type=int, default=None, help="chunks retrieved per query")
    r.add_argument(
        "--no-headers",
        action="store_true",
        help="index chunks without their contextual header (title, section): the ablation",
    )
    r.add_argument("--index-dir", type=Path, help="keep the built index here (default: a temp dir)")
    r.add_argument(
        "--embedding-cache",
        type=Path,
        help="development only: reuse chunk vectors computed by an earlier run with this folder",
    )
    r.set_defaults(func=cmd_eval_retrieval)

    from docket.evaluation.answers import add_answers_parser

    add_answers_parser(esub)


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    from docket.embedding.factory import get_embedder
    from docket.evaluation.beir import load_beir
    from docket.evaluation.indexing import EVAL_TENANT, build_index
    from docket.evaluation.report import as_json, plot, print_table, write_json
    from docket.evaluation.retrieval import DEFAULT_DEPTH, MODES, run_mode
    from docket.models import SearchFilter
    from docket.search.retrieval import retriever_for

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        print(
            f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}", file=sys.stderr
        )
        return 2
    settings = Settings()
    dataset = load_beir(args.dataset, args.split)
    embedder = get_embedder(settings)
    reranker = None
    if "hybrid+rerank" in modes:
        from docket.rerank.factory import get_reranker

        reranker = get_reranker(settings)
    print(
        f"{dataset.name} ({args.split}): {len(dataset.corpus)} documents, "
        f"{len(dataset.queries)} queries; embedding model {embedder.model.tag}"
    )
    with tempfile.TemporaryDirectory(prefix="docket-eval-") as scratch:
        directory = args.index_dir or Path(scratch) / "index"
        with _progress() as bar:
            task = bar.add_task("indexing (chunk, embed, index)", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            indexed = build_index(
                list(dataset.corpus.values()),
                settings=settings,
                embedder=embedder,
                directory=directory,
                headers=not args.no_headers,
                progress=advance,
                cache_dir=args.embedding_cache,
            )
        timings = indexed.timings_s
        print(
            f"indexed {indexed.documents} documents as {len(indexed.chunks)} chunks in "
            f"{timings['total']:.1f} s (chunk {timings['chunk']:.1f}, embed {timings['embed']:.1f},"
            f" index {timings['index']:.1f})"
        )
        retriever = retriever_for(settings, indexed.index, embedder)
        flt = SearchFilter(tenant=EVAL_TENANT, groups=frozenset())
        results = []
        try:
            for mode in modes:
                started = time.perf_counter()
                results.append(
                    run_mode(
                        mode,
                        dataset,
                        retriever,
                        flt,
                        indexed.corpus_id,
                        depth=args.depth or DEFAULT_DEPTH,
                        reranker=reranker,
                        rerank_candidates=settings.rerank_top_n_candidates,
                    )
                )
                print(f"  {mode}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        finally:
            indexed.index.close()
    title = f"{dataset.name} {args.split} ({len(dataset.queries)} queries)"
    print_table(results, title)
    extra = {
        "documents": indexed.documents,
        "chunks": len(indexed.chunks),
        "headers": not args.no_headers,
        "embedding_model": embedder.model.tag,
        "indexing_s": {k: round(v, 2) for k, v in timings.items()},
        "settings": {
            "chunk_size_tokens": settings.chunk_size_tokens,
            "chunk_overlap_tokens": settings.chunk_overlap_tokens,
            "candidate_k": settings.candidate_k,
            "fusion": retriever.fusion.describe(),
        },
    }
    if args.json:
        write_json(args.json, as_json(dataset.name, args.split, results, extra))
        print(f"wrote {args.json}")
    if args.plot:
        plot(args.plot, results, title)
        print(f"wrote {args.plot}")
    return 0
