"""``docket demo``: a local cloud on free ports, the sample documents ingested through the API,
a few questions answered with citations, then everything stopped."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from docket.local.cloud import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared" / "data" / "documents"
SAMPLES = [
    REPO_ROOT / "docs" / "samples",  # the handbook and three sample contracts
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


APPROVER = "approver@example.com"
AGENT_TASK = (
    "Compare the termination clauses in the Acme, Globex and Initech contracts in a table "
    "and e-mail it to legal@example.com"
)


def run_agent_demo(url: list[str], root: Path) -> int:
    """One agent task that needs approval: it waits, a person approves, one e-mail is sent."""
    import contextlib
    import io

    from docket import cli

    who = ["--tenant", "acme", "--groups", "staff"]
    print(f'\n== docket task "{AGENT_TASK}" --wait --tenant acme')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["task", AGENT_TASK, "--wait", *url, *who])
    print(out.getvalue(), end="")
    task_id = out.getvalue().split()[0]
    print("\n== docket approvals list --tenant acme")
    pending = io.StringIO()
    with contextlib.redirect_stdout(pending):
        cli.main(["approvals", "list", *url, *who])
    print(pending.getvalue(), end="")
    lines = pending.getvalue().split()
    if not lines:
        print("no approval was requested: the demo expected one")
        return 1
    approval_id = lines[0]
    # four eyes: the task's requester cannot approve its own e-mail; the approver does
    print(
        f"\n== docket approvals approve {approval_id} --comment 'checked the table' "
        f"--tenant acme --as {APPROVER}"
    )
    approver = ["--as", APPROVER]
    cli.main(
        [
            "approvals",
            "approve",
            approval_id,
            "--comment",
            "checked the table",
            *url,
            *who,
            *approver,
        ]
    )
    print(f"\n== docket tasks show {task_id} --tenant acme  (after it finishes)")
    _wait_task(url, who, task_id)
    rc = cli.main(["tasks", "show", task_id, *url, *who])
    import email

    mails = [
        email.message_from_bytes(p.read_bytes()) for p in sorted((root / "outbox").glob("*.eml"))
    ]
    notices = [m for m in mails if APPROVER in (m["To"] or "")]
    sent = [m for m in mails if "legal@example.com" in (m["To"] or "")]
    for notice in notices:
        link = next((w for w in _text(notice).split() if "/approvals/apv_" in w), "")
        print(f"\n== the approver's e-mail ({APPROVER}) links to the approval page:\n{link}")
    print(
        f"\n== e-mails sent to legal@example.com: {len(sent)} (outbox/*.eml in the data directory)"
    )
    for message in sent:
        print(f"From: {message['From']}\nTo: {message['To']}\nSubject: {message['Subject']}\n")
        print(_text(message))
    if len(sent) != 1:
        rc = 1
    return rc


def _text(message: Any) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            return payload.decode() if isinstance(payload, bytes) else str(payload)
    return ""


def _wait_task(url: list[str], who: list[str], task_id: str, timeout: float = 60) -> None:
    import contextlib
    import io
    import json

    from docket import cli

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            cli.main(["tasks", "show", task_id, "--json", *url, *who])
        with contextlib.suppress(ValueError):
            if json.loads(buf.getvalue())["task"]["status"] not in ("running", "waiting_approval"):
                return
        time.sleep(0.2)


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
    # approvals are e-mailed to this approver (a signed link to the approval page)
    cloud = LocalCloud(root, env={"DOCKET_APPROVAL_EMAILS": APPROVER}).start(s3_port=_free_port())
    gateway = Gateway(cloud, port=_free_port()).start()
    print(f"== local cloud up: API {gateway.url}, S3 {cloud.s3_endpoint}, data {root}")
    try:
        url = ["--url", gateway.url]
        print(f"\n== docket ingest ({len(paths)} paths) --tenant acme --acl staff")
        rc = cli.main(["ingest", *paths, *url, "--tenant", "acme", "--acl", "staff"])
        print("\n== docket docs list --tenant acme --groups staff")
        cli.main(["docs", "list", *url, "--tenant", "acme", "--groups", "staff"])
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
        rc = max(rc, run_agent_demo(url, root))
        print(f"\n== demo finished in {time.perf_counter() - started:.0f}s")
        return rc
    finally:
        gateway.stop()
        cloud.stop()
        if not keep and data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
