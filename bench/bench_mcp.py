"""What the MCP layer costs: MCP ``search`` and ``ask`` against ``POST /query``, through the local
gateway, on SciFact, in the same run.

SciFact abstracts go into the local cloud (``--limit`` of them, all by default), then each test
claim is sent three ways, interleaved so that the machine's noise falls on all three alike:
``POST /query`` (hybrid, top_k 10, JSON), and the same arguments as a JSON-RPC ``tools/call`` of
``ask`` and of ``search`` on ``POST /mcp`` (one message per request, as a stateless client sends
after ``initialize``). ``ask`` does the same work as ``POST /query``, so their difference is the
MCP layer (the SDK's JSON-RPC handling, schema validation, the in-process ASGI bridge); ``search``
skips the answerer.

Usage: python bench/bench_mcp.py [--limit N] [--queries N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import gateway_client, nearest_rank, scifact_rows, scifact_test_questions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="SciFact documents (0: all)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    docs = scifact_rows(limit=args.limit)
    if docs is None:
        return 2
    questions = scifact_test_questions(args.queries)

    # the MCP layer, not the per-tenant rate limit (docket.access.limits), is what is measured
    no_limits = {"DOCKET_QUERY_RPM": "0", "DOCKET_MCP_RPM": "0"}
    with gateway_client(no_limits, "docket-bench-mcp-", docs) as (_, http, headers):

        def rest(question: str) -> list[str]:
            resp = http.post("/query", json={"question": question}, headers=headers)
            resp.raise_for_status()
            return [c["chunk_id"] for c in resp.json()["chunks"]]

        def mcp(tool: str, question: str) -> list[str]:
            message = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": tool, "arguments": {"question": question}},
            }
            resp = http.post("/mcp", json=message, headers=headers)
            resp.raise_for_status()
            result = resp.json()["result"]
            assert not result["isError"], result
            return [c["chunk_id"] for c in result["structuredContent"]["chunks"]]

        calls = {
            "rest_query": rest,
            "mcp_ask": lambda q: mcp("ask", q),
            "mcp_search": lambda q: mcp("search", q),
        }
        for question in questions[:10]:  # warm every path
            for call in calls.values():
                call(question)
        timings: dict[str, list[float]] = {name: [] for name in calls}
        same = 0
        for question in questions:
            ids = {}
            for name, call in calls.items():
                started = time.perf_counter()
                ids[name] = call(question)
                timings[name].append((time.perf_counter() - started) * 1000)
            same += ids["rest_query"] == ids["mcp_ask"] == ids["mcp_search"]
        results: dict[str, object] = {"documents": len(docs), "queries": len(questions)}
        for name, values in timings.items():
            results[name] = {
                "p50_ms": round(statistics.median(values), 2),
                "p95_ms": round(nearest_rank(values, 95), 2),
            }
            print(
                f"{name:<11} p50 {results[name]['p50_ms']:6.1f} ms   p95 {results[name]['p95_ms']:6.1f} ms"
            )  # type: ignore[index]
        overhead = nearest_rank(timings["mcp_ask"], 95) - nearest_rank(timings["rest_query"], 95)
        results["mcp_overhead_p95_ms"] = round(overhead, 2)
        results["same_chunk_ids"] = same
        print(f"MCP layer at p95 (ask - POST /query): {overhead:+.1f} ms (target ≤ 5 ms)")
        print(f"same chunk ids on all three paths: {same} of {len(questions)}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
