"""How fast a source table's change is answered: edits and deletes in the example tickets table of
the local cloud, each timed from the write until ``POST /query`` reflects it.

A corpus of tickets (SciFact abstracts, for realistic text, ``--rows`` of them) is written to
``docket-tickets`` through the local AWS endpoint and synced. Then each of ``--edits`` rows gets
a new body holding a unique code word, and the time until a query for that code word returns a
chunk with it is taken; then ``--deletes`` rows are deleted, timed until no query returns them,
and asked again after ``--linger`` seconds (a deleted row must never be answered again).

Usage: python bench/bench_sync.py [--rows N] [--edits N] [--deletes N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal
from pathlib import Path

from common import gateway_client, percentiles, scifact_rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--deletes", type=int, default=20)
    parser.add_argument("--linger", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    docs = scifact_rows(limit=args.rows)
    if docs is None:
        return 2

    from docket.wiring import TICKETS_TABLE

    with gateway_client({}, "docket-bench-sync-") as (cloud, http, headers):
        table = cloud.endpoint_resource("dynamodb").Table(TICKETS_TABLE)

        def ticket(n: int, body: str, version: int) -> dict[str, object]:
            d = docs[n]
            return {
                "id": f"T-{n:05d}",
                "tenant": "bench",
                "title": d.get("title") or f"Ticket {n}",
                "body": body,
                "status": "resolved",
                "version": Decimal(version),
            }

        started = time.perf_counter()
        for n, d in enumerate(docs):
            table.put_item(Item=ticket(n, d["text"], 1))
        cloud.wait_idle(timeout=3600)
        backlog_s = time.perf_counter() - started

        def texts(question: str) -> str:
            """The text of the chunks a question retrieves."""
            resp = http.post("/query", json={"question": question, "top_k": 5}, headers=headers)
            resp.raise_for_status()
            return " ".join(c["text"] for c in resp.json()["chunks"])

        def until(check, timeout: float = 60.0) -> float:  # type: ignore[no-untyped-def]
            began = time.perf_counter()
            while time.perf_counter() - began < timeout:
                if check():
                    return time.perf_counter() - began
                time.sleep(0.05)
            raise TimeoutError("the change was not answered in time")

        edit_s: list[float] = []
        for k in range(args.edits):
            n = (k * 7) % len(docs)
            word = f"zq{k:03d}codeword"
            table.put_item(Item=ticket(n, f"{docs[n]['text']} Fixed by {word}.", 2 + k))
            edit_s.append(until(lambda word=word: word in texts(f"fixed by {word}")))
        delete_s: list[float] = []
        deleted: list[str] = []
        for k in range(args.deletes):
            n = len(docs) - 1 - k
            title = str(docs[n].get("title") or "")
            table.delete_item(Key={"id": f"T-{n:05d}"})
            key = f"tickets/T-{n:05d}.md"

            def gone(key: str = key, title: str = title) -> bool:
                resp = http.post(
                    "/query", json={"question": title, "top_k": 10}, headers=headers
                ).json()
                return all(c["source"] != key for c in resp["chunks"])

            delete_s.append(until(gone))
            deleted.append(title)
        time.sleep(args.linger)
        resurrected = 0
        for k, title in enumerate(deleted):
            key = f"tickets/T-{len(docs) - 1 - k:05d}.md"
            resp = http.post("/query", json={"question": title, "top_k": 10}, headers=headers)
            resurrected += any(c["source"] == key for c in resp.json()["chunks"])
        results = {
            "rows": len(docs),
            "backlog_s": round(backlog_s, 1),
            "rows_per_s": round(len(docs) / backlog_s, 1),
            "edit_visible_s": percentiles(edit_s),
            "delete_gone_s": percentiles(delete_s),
            "deleted_answered_again": resurrected,
        }
        print(f"{len(docs)} rows synced in {backlog_s:.1f} s ({results['rows_per_s']} rows/s)")
        print(
            f"edit → answered: p50 {results['edit_visible_s']['p50']} s, "  # type: ignore[index]
            f"p95 {results['edit_visible_s']['p95']} s ({len(edit_s)} edits)"
        )  # type: ignore[index]
        print(
            f"delete → never answered: p50 {results['delete_gone_s']['p50']} s, "  # type: ignore[index]
            f"p95 {results['delete_gone_s']['p95']} s; answered again after "  # type: ignore[index]
            f"{args.linger:.0f} s: {resurrected} of {len(deleted)}"
        )
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0 if resurrected == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
