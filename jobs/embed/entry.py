"""Entry point of the re-embedding job (logic: docket/embedding/batch_job.py).

    python jobs/embed/entry.py serve [--port 8080]
        SageMaker Batch Transform's container contract (SageMaker starts the image with "serve"):
        GET /ping, POST /invocations with JSON lines in and out.
    python jobs/embed/entry.py transform --input DIR --output DIR
        Every DIR/*.jsonl → OUTPUT/<name>.out, as Batch Transform names them (the local cloud
        runs this on the job's recorded S3 prefixes).

The model comes from the usual settings: DOCKET_EMBEDDING_MODEL, DOCKET_EMBEDDING_PRECISION
(fp32 | int8), DOCKET_EMBEDDING_BATCH_SIZE; DOCKET_MODEL_DIR defaults to /opt/ml/model (where
SageMaker unpacks the model artifact) when that folder exists.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")


def build_embedder():  # type: ignore[no-untyped-def]
    if "DOCKET_MODEL_DIR" not in os.environ and SAGEMAKER_MODEL_DIR.is_dir():
        os.environ["DOCKET_MODEL_DIR"] = str(SAGEMAKER_MODEL_DIR)
    from docket.config import get_settings
    from docket.embedding.onnx import OnnxEmbedder

    return OnnxEmbedder.from_settings(get_settings())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobs/embed/entry.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="SageMaker's container contract on --port")
    serve.add_argument(
        "--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", 8080))
    )
    transform = sub.add_parser("transform", help="a folder of .jsonl files → .out files")
    transform.add_argument("--input", type=Path, required=True)
    transform.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    from docket.embedding.batch_job import MalformedLine, make_server, transform_dir

    embedder = build_embedder()
    if args.command == "serve":
        server = make_server(embedder, port=args.port)
        print(f"embedding job serving {embedder.model.tag} on :{args.port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0
    if not args.input.is_dir():
        print(f"embed job: input folder {args.input} does not exist", file=sys.stderr)
        return 2
    try:
        stats = transform_dir(embedder, args.input, args.output)
    except MalformedLine as exc:
        print(f"embed job: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "model": embedder.model.tag,
                "files": stats.files,
                "records": stats.records,
                "seconds": round(stats.seconds, 2),
                "records_per_s": round(stats.per_second, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
