"""The local cloud and the CDK app declare the same system.

docket.wiring.WIRING is what the local cloud builds in moto; here the synthesized template
is read back into the same shape and the two are compared whole, both ways: a function, table,
queue, event source, notification or state machine on one side only fails, as does any differing
handler, size, batch setting, stream, index or substitution.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docket.wiring import WIRING, Wiring
from infra import constants as c

from .conftest import STAGE, Synth


def declared(w: Wiring) -> dict[str, Any]:
    """WIRING in a comparable form (windows as AWS takes them: whole seconds)."""
    return {
        "buckets": sorted(w.buckets),
        "tables": {
            t.name: {
                "keys": [t.partition_key, t.sort_key],
                "stream": t.stream,
                "indexes": {i.name: [i.partition_key, i.sort_key] for i in t.indexes},
                "ttl": t.ttl_attribute,
            }
            for t in w.tables
        },
        "queues": {
            q.name: {
                "visibility": q.visibility_timeout,
                "dlq": q.dead_letter_queue,
                "max_receive": q.max_receive_count if q.dead_letter_queue else None,
            }
            for q in w.queues
        },
        "functions": {
            f.name: {
                "code": f.code_dir,
                "handler": f.handler,
                "memory": f.memory_mb,
                "timeout": f.timeout_s,
                "reserved": f.reserved_concurrency,
            }
            for f in w.functions
        },
        "event_sources": sorted(
            (
                e.function,
                e.kind,
                e.source,
                e.batch_size,
                c.batching_window_seconds(e.max_batching_window_s),
                e.max_retry_attempts if e.kind == "dynamodb_stream" else None,
                e.bisect_on_error if e.kind == "dynamodb_stream" else None,
                e.on_failure_queue,
                e.report_batch_item_failures,
            )
            for e in w.event_sources
        ),
        "notifications": sorted(
            (n.bucket, n.queue, n.prefix, tuple(sorted(n.events))) for n in w.notifications
        ),
        "state_machines": {
            s.name: {"definition": s.definition, "functions": dict(s.functions)}
            for s in w.state_machines
        },
        "api_function": w.api_function,
        "mcp_function": w.mcp_function,
    }


def synthesized(synth: Synth) -> dict[str, Any]:
    """The same shape, read from the template (names from the docket:wiring metadata)."""
    name = synth.name_of

    def ref(value: dict[str, Any]) -> str:
        return value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]

    tables = {}
    for n, (_, t) in synth.wiring("AWS::DynamoDB::Table").items():
        p = t["Properties"]
        keys = {k["KeyType"]: k["AttributeName"] for k in p["KeySchema"]}
        tables[n] = {
            "keys": [keys["HASH"], keys.get("RANGE")],
            "stream": p.get("StreamSpecification", {}).get("StreamViewType")
            == "NEW_AND_OLD_IMAGES",
            "indexes": {
                g["IndexName"]: [
                    next(k["AttributeName"] for k in g["KeySchema"] if k["KeyType"] == kt)
                    for kt in ("HASH", "RANGE")
                ]
                for g in p.get("GlobalSecondaryIndexes", [])
            },
            "ttl": p.get("TimeToLiveSpecification", {}).get("AttributeName"),
        }
    queues = {}
    for n, (_, q) in synth.wiring("AWS::SQS::Queue").items():
        redrive = q["Properties"].get("RedrivePolicy")
        queues[n] = {
            "visibility": q["Properties"]["VisibilityTimeout"],
            "dlq": name(ref(redrive["deadLetterTargetArn"])) if redrive else None,
            "max_receive": redrive["maxReceiveCount"] if redrive else None,
        }
    functions = {}
    for n, (_, f) in synth.wiring("AWS::Lambda::Function").items():
        p = f["Properties"]
        functions[n] = {
            "code": _code_dir(synth.asset(p["Code"]["S3Key"])),
            "handler": p["Handler"],
            "memory": p["MemorySize"],
            "timeout": p["Timeout"],
            "reserved": p.get("ReservedConcurrentExecutions"),
        }
    sources = []
    for m in synth.of_type("AWS::Lambda::EventSourceMapping").values():
        p = m["Properties"]
        source_logical, attr = p["EventSourceArn"]["Fn::GetAtt"]
        stream = attr == "StreamArn"
        dest = p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        sources.append(
            (
                name(ref(p["FunctionName"])),
                "dynamodb_stream" if stream else "sqs",
                name(source_logical),
                p["BatchSize"],
                p.get("MaximumBatchingWindowInSeconds", 0),
                p.get("MaximumRetryAttempts") if stream else None,
                p.get("BisectBatchOnFunctionError", False) if stream else None,
                name(ref(dest)) if dest else None,
                "ReportBatchItemFailures" in p.get("FunctionResponseTypes", []),
            )
        )
    notifications = []
    for resource in synth.of_type("Custom::S3BucketNotifications").values():
        p = resource["Properties"]
        by_queue: dict[tuple[str, str], set[str]] = {}
        for qc in p["NotificationConfiguration"].get("QueueConfigurations", []):
            (rule,) = qc["Filter"]["Key"]["FilterRules"]
            assert rule["Name"] == "prefix"
            by_queue.setdefault((name(ref(qc["QueueArn"])), rule["Value"]), set()).update(
                qc["Events"]
            )
        for (queue, prefix), events in by_queue.items():
            notifications.append((name(ref(p["BucketName"])), queue, prefix, tuple(sorted(events))))
    machines = {}
    for n, (_, sm) in synth.wiring("AWS::StepFunctions::StateMachine").items():
        definition = synth.definition(sm)
        matching = [
            f.name
            for f in c.STATE_MACHINES_DIR.glob("*.asl.json")
            if json.loads(f.read_text()) == json.loads(definition)
        ]
        assert len(matching) == 1, f"{n}: its definition is no file of state_machines/"
        machines[n] = {
            "definition": matching[0],
            "functions": {
                ph: name(ref(v)) for ph, v in sm["Properties"]["DefinitionSubstitutions"].items()
            },
        }
    # which function each route's integration invokes: /mcp has its own, every other route the api
    integrations = {
        logical: name(i["Properties"]["IntegrationUri"]["Fn::GetAtt"][0])
        for logical, i in synth.of_type("AWS::ApiGatewayV2::Integration").items()
    }
    route_functions: dict[str, set[str]] = {}
    for route in synth.of_type("AWS::ApiGatewayV2::Route").values():
        target = route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]
        path = route["Properties"]["RouteKey"].split(" ", 1)[1]
        route_functions.setdefault("mcp" if path == "/mcp" else "api", set()).add(
            integrations[target]
        )
    (api,) = route_functions["api"]
    (mcp,) = route_functions["mcp"]
    return {
        "buckets": sorted(synth.wiring("AWS::S3::Bucket")),
        "tables": tables,
        "queues": queues,
        "functions": functions,
        "event_sources": sorted(sources),
        "notifications": sorted(notifications),
        "state_machines": machines,
        "api_function": api,
        "mcp_function": mcp,
    }


def _code_dir(asset: Path) -> str:
    """Which functions/<dir> a staged code asset is: same files, same bytes."""
    files = {p.relative_to(asset): p.read_bytes() for p in asset.rglob("*") if p.is_file()}
    for candidate in sorted(c.FUNCTIONS_DIR.iterdir()):
        source = {
            p.relative_to(candidate): p.read_bytes()
            for p in candidate.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        if source == files:
            return candidate.name
    raise AssertionError(f"{asset} matches no functions/ folder")


def test_local_wiring_equals_the_cdk_app(synth: Synth) -> None:
    expected, actual = declared(WIRING), synthesized(synth)
    for section in expected:
        assert actual[section] == expected[section], section
    assert actual == expected


def test_resource_names_carry_the_stage(synth: Synth) -> None:
    for n, (_, t) in synth.wiring("AWS::DynamoDB::Table").items():
        assert t["Properties"]["TableName"] == f"{n}-{STAGE}"
    for n, (_, q) in synth.wiring("AWS::SQS::Queue").items():
        assert q["Properties"]["QueueName"] == f"{n}-{STAGE}"


def test_drift_is_detected_both_ways(synth: Synth) -> None:
    """Adding a function to WIRING alone, or dropping one from it, shows as a difference."""
    from dataclasses import replace

    from docket.wiring import FunctionSpec

    actual = synthesized(synth)
    more = replace(WIRING, functions=(*WIRING.functions, FunctionSpec("docket-new", "new")))
    fewer = replace(WIRING, functions=WIRING.functions[1:])
    bigger = replace(
        WIRING,
        functions=tuple(
            replace(f, memory_mb=f.memory_mb * 2) if f.name == "docket-embed" else f
            for f in WIRING.functions
        ),
    )
    for changed in (more, fewer, bigger):
        assert declared(changed)["functions"] != actual["functions"]
