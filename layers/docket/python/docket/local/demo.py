"""``docket demo``: a local cloud on free ports, the sample documents ingested through the API,
a few questions answered with citations, then everything stopped."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path

from docket.local.cloud import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared" / "data" / "documents"
SAMPLES = [
    REPO_ROOT / "docs" / "samples",
    SHARED / "real_world" / "DeepSeek_R1.pdf",
    SHARED / "real_world" / "got.txt",
    SHARED / "real_world" / "aristotle.txt",
    SHARED / "real_world" / "pg_essay_1.html",
    SHARED / "supported_file_types" / "docx.docx",
    SHARED / "supported_file_types" / "eml.eml",
    SHARED / "supported_file_types" / "csv.csv",
]
QUESTIONS = [
    ("acme", ["staff"], "What happens when a file is password-protected?"),
    ("acme", ["staff"], "Which reinforcement learning algorithm does DeepSeek-R1 use?"),
    ("acme", ["staff"], "Where was Aristotle born?"),
    ("acme", ["staff"], "Who is the Lord of Winterfell?"),
    ("acme", ["staff"], "What is the boiling point of liquid nitrogen on Jupiter's moons?"),
    ("globex", [], "Who is the Lord of Winterfell?"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_demo(*, keep: bool = False, data_dir: str | None = None) -> int:
    from docket import cli
    from docket.local.cloud import LocalCloud
    from docket.local.gateway import Gateway

    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="docket-demo-"))
    paths = [str(p) for p in SAMPLES if p.exists()]
    started = time.perf_counter()
    cloud = LocalCloud(root).start(s3_port=_free_port())
    gateway = Gateway(cloud, port=_free_port()).start()
    print(f"== local cloud up: API {gateway.url}, S3 {cloud.s3_endpoint}, data {root}")
    try:
        url = ["--url", gateway.url]
        print(f"\n== docket ingest ({len(paths)} paths) --tenant acme --acl staff")
        rc = cli.main(["ingest", *paths, *url, "--tenant", "acme", "--acl", "staff"])
        print("\n== docket docs list --tenant acme")
        cli.main(["docs", "list", *url, "--tenant", "acme"])
        for tenant, groups, question in QUESTIONS:
            who = f"--tenant {tenant}" + (f" --groups {' '.join(groups)}" if groups else "")
            print(f'\n== docket ask "{question}" {who}')
            cli.main(
                [
                    "ask",
                    question,
                    *url,
                    "--tenant",
                    tenant,
                    *(["--groups", *groups] if groups else []),
                ]
            )
        print(f"\n== demo finished in {time.perf_counter() - started:.0f}s")
        return rc
    finally:
        gateway.stop()
        cloud.stop()
        if not keep and data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
