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
    r.add_argument(
        "--ignore-identical-ids",
        action="store_true",
        help="drop a retrieved document whose id equals the query id before scoring (BEIR's "
        "rule for corpora whose queries are also documents, e.g. ArguAna)",
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

    t = esub.add_parser(
        "tune",
        help="fit an index's fusion parameters on the owner's golden set and store them with it",
    )
    t.add_argument(
        "--dataset",
        type=Path,
        required=True,
        help="a BEIR-layout folder of your own questions and judgements (qrels name documents "
        "by their source, as ingested)",
    )
    t.add_argument("--split", default="test", help="qrels/SPLIT.tsv (default: test)")
    t.add_argument(
        "--index-dir",
        type=Path,
        help="an embedded index directory (default: the configured index, OpenSearch on AWS); "
        "it must not be open in a running `docket serve`",
    )
    t.add_argument("--tenant", default=None, help="the tenant whose documents are judged")
    t.add_argument(
        "--groups",
        default="",
        help="comma-separated ACL groups to ask as (documents restricted to other groups are "
        "out of reach, as for a caller with these groups)",
    )
    t.add_argument(
        "--build",
        action="store_true",
        help="first index the dataset's corpus.jsonl into --index-dir (to try tuning on a BEIR set)",
    )
    t.add_argument("--ignore-identical-ids", action="store_true", help="as for `eval retrieval`")
    t.add_argument("--dry-run", action="store_true", help="show the table, store nothing")
    t.add_argument(
        "--min-gain",
        type=float,
        default=None,
        help="the cross-validated nDCG@10 gain over the defaults a fit needs to be kept "
        "(default 0.002)",
    )
    t.add_argument(
        "--reset", action="store_true", help="forget the index's tuning (back to the defaults)"
    )
    t.add_argument("--json", type=Path, help="write the report as JSON here")
    t.add_argument("--embedding-cache", type=Path, help="development only, as for `retrieval`")
    t.set_defaults(func=cmd_eval_tune)


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
                        ignore_identical_ids=args.ignore_identical_ids,
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
        "ignore_identical_ids": args.ignore_identical_ids,
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


def _tune_index(args: argparse.Namespace, settings: Settings, embedder: Any) -> tuple[Any, str]:
    """The index to tune and the tenant to query it as."""
    from docket.cli import CliError
    from docket.evaluation.beir import load_beir
    from docket.evaluation.indexing import EVAL_TENANT, build_index
    from docket.search.embedded import EmbeddedIndex
    from docket.search.factory import get_index

    if args.build:
        if args.index_dir is None:
            raise CliError("--build needs --index-dir (where the built index is kept)")
        if (args.index_dir / "manifest.json").exists():
            raise CliError(f"{args.index_dir} already holds an index; --build makes a new one")
        corpus = load_beir(args.dataset, args.split).corpus
        indexed = build_index(
            list(corpus.values()),
            settings=settings,
            embedder=embedder,
            directory=args.index_dir,
            cache_dir=args.embedding_cache,
        )
        print(f"indexed {indexed.documents} documents as {len(indexed.chunks)} chunks")
        return indexed.index, EVAL_TENANT
    if args.tenant is None:
        raise CliError("--tenant is required: whose documents does the golden set judge?")
    if args.index_dir is not None:
        if not (args.index_dir / "manifest.json").exists():
            raise CliError(f"{args.index_dir} holds no index (use --build to make one)")
        return EmbeddedIndex(args.index_dir, embedder.model), args.tenant
    return get_index(settings), args.tenant


def cmd_eval_tune(args: argparse.Namespace) -> int:
    from docket.embedding.factory import get_embedder
    from docket.evaluation.beir import load_beir
    from docket.evaluation.report import write_json
    from docket.evaluation.tune import TuneError, collect, tune
    from docket.models import SearchFilter, document_id_for
    from docket.search.fusion import Fusion
    from docket.search.retrieval import fusion_for, retriever_for

    settings = Settings()
    embedder = get_embedder(settings)
    dataset = load_beir(args.dataset, args.split)
    index, tenant = _tune_index(args, settings, embedder)
    try:
        if args.reset:
            index.store_tuned_fusion(None)
            print("the index's tuning is forgotten: the defaults apply")
            return 0
        judged = {doc for docs in dataset.qrels.values() for doc, g in docs.items() if g > 0}
        missing = [
            d for d in judged if not index.count_document(tenant, document_id_for(tenant, d))
        ]
        if len(missing) == len(judged):
            print(
                f"none of the {len(judged)} judged documents is in the index under tenant "
                f"{tenant!r} (qrels must name documents by their source, e.g. {missing[0]!r})",
                file=sys.stderr,
            )
            return 2
        if missing:
            print(f"warning: {len(missing)} of {len(judged)} judged documents are not in the index")
        retriever = retriever_for(settings, index, embedder)
        # the defaults this index would have without its tuning (explicit settings included)
        previous = index.tuned_fusion()
        base: Fusion = fusion_for(settings, index, use_tuning=False)
        groups = frozenset(g.strip() for g in args.groups.split(",") if g.strip())
        flt = SearchFilter(tenant=tenant, groups=groups)
        with _progress() as bar:
            task = bar.add_task("retrieving the golden questions", total=len(dataset.queries))
            lists = collect(
                retriever,
                dataset,
                flt,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        try:
            report = tune(
                lists,
                dataset.qrels,
                base,
                retriever.candidate_k,
                ignore_identical_ids=args.ignore_identical_ids,
                **({} if args.min_gain is None else {"min_gain": args.min_gain}),
            )
        except TuneError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        _print_tune(report, dataset.name)
        if args.dry_run:
            print("dry run: nothing stored")
        elif report.kept:
            index.store_tuned_fusion(report.stored(dataset.name))
            print("stored with the index: the query path uses it from its next start")
        elif previous is not None:
            index.store_tuned_fusion(None)
            print("the index's earlier tuning is removed: the defaults apply")
        if args.json:
            write_json(args.json, report.model_dump(mode="json"))
            print(f"wrote {args.json}")
        return 0
    finally:
        index.close()


def _print_tune(report: Any, name: str) -> None:
    print(f"{name}: {report.questions} judged questions, {report.candidates} candidate fusions")
    print(f"| {'ranking':<20} | nDCG@10 | Recall@100 |")
    print(f"|{'-' * 22}|---------|------------|")
    for row in report.table:
        print(f"| {row.name:<20} | {row.ndcg10:.4f}  | {row.recall100:.4f}     |")
    changed = {k: v for k, v in report.best.items() if report.default.get(k) != v}
    print(f"tuned: {changed or 'the defaults'}")
    print(report.reason)
