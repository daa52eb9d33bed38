"""Least privilege: each function's role names the resources it touches, nothing on "*" but the
actions that support no resource-level permissions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from docket.wiring import WIRING
from infra import constants as c

from .conftest import Synth

# actions AWS offers only on "*" (and what CDK adds for tracing, VPC access, stream listing)
STAR_ONLY = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "dynamodb:ListStreams",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def statements(synth: Synth, function: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to a WIRING function's role."""
    _, fn = synth.wiring("AWS::Lambda::Function")[function]
    role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    out: list[dict[str, Any]] = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def actions(statement: dict[str, Any]) -> list[str]:
    a = statement["Action"]
    return a if isinstance(a, list) else [a]


def resources(statement: dict[str, Any]) -> list[Any]:
    r = statement["Resource"]
    return r if isinstance(r, list) else [r]


def granted(synth: Synth, function: str, action: str) -> list[Any]:
    return [r for s in statements(synth, function) if action in actions(s) for r in resources(s)]


def logical(synth: Synth, cfn_type: str, name: str) -> str:
    return synth.wiring(cfn_type)[name][0]


@pytest.mark.parametrize("function", [f.name for f in WIRING.functions])
def test_a_role_grants_each_statement_once(synth: Synth, function: str) -> None:
    # docket's own statements carry a Sid (CDK's grants do not): one each per role
    sids = [s["Sid"] for s in statements(synth, function) if s.get("Sid")]
    assert len(sids) == len(set(sids)), sorted(sids)


@pytest.mark.parametrize("function", [f.name for f in WIRING.functions])
def test_nothing_on_star_but_star_only_actions(synth: Synth, function: str) -> None:
    for s in statements(synth, function):
        assert s["Effect"] == "Allow"
        if "*" in resources(s):
            assert set(actions(s)) <= STAR_ONLY, (function, s)
        assert not any(a.endswith(":*") or a == "*" for a in actions(s)), (function, s)


def test_embed_writes_to_this_domain_only(synth: Synth) -> None:
    (domain,) = synth.of_type("AWS::OpenSearchService::Domain")
    arn = {"Fn::GetAtt": [domain, "Arn"]}
    put = granted(synth, "docket-embed", "es:ESHttpPut")
    assert put, "embed cannot write the index"
    assert "*" not in put
    assert arn in put and {"Fn::Join": ["", [arn, "/*"]]} in put
    for fn in ("docket-api", "docket-agent-tool"):
        assert granted(synth, fn, "es:ESHttpPost") and not granted(synth, fn, "es:ESHttpPut")
    for fn in ("docket-extract", "docket-chunk", "docket-agent-model", "docket-agent-approval"):
        assert not any(a.startswith("es:") for s in statements(synth, fn) for a in actions(s))


def test_only_the_api_and_the_rebuild_drive_state_machines(synth: Synth) -> None:
    stage = synth.stack_name.split("-", 1)[1]
    machine = f"{c.AGENT_STATE_MACHINE}-{stage}"
    reembed = f"{c.REEMBED_STATE_MACHINE}-{stage}"
    for action in ("states:SendTaskSuccess", "states:SendTaskFailure"):
        # a decision resumes an agent task or a rebuild waiting for its cutover's approval
        for fn in ("docket-api", "docket-agent-approval"):
            sent = sorted(
                json.dumps(a).rsplit(":stateMachine:", 1)[1] for a in granted(synth, fn, action)
            )
            assert sent == [f'{machine}"]]}}', f'{reembed}"]]}}'], fn
        # the rebuild answers its own job's task token, on its own state machine only
        (arn,) = granted(synth, "docket-reembed", action)
        assert json.dumps(arn).endswith(f':stateMachine:{reembed}"]]}}'), arn
    backfill = f"{c.SYNC_BACKFILL_STATE_MACHINE}-{stage}"
    started = sorted(json.dumps(a) for a in granted(synth, "docket-api", "states:StartExecution"))
    assert len(started) == 3  # a task, a rebuild, a backfill of a synced table
    assert {s.rsplit(":stateMachine:", 1)[1] for s in started} == {
        f'{machine}"]]}}',
        f'{reembed}"]]}}',
        f'{backfill}"]]}}',
    }
    described = [json.dumps(a) for a in granted(synth, "docket-api", "states:DescribeExecution")]
    assert sorted(d.split(":execution:")[1] for d in described) == sorted(
        [f'{machine}:*"]]}}', f'{reembed}:*"]]}}', f'{backfill}:*"]]}}']
    )
    (arn,) = granted(synth, "docket-api", "states:StopExecution")
    assert f":execution:{machine}:*" in json.dumps(arn)
    for fn in WIRING.functions:
        if fn.name not in ("docket-api", "docket-reembed", "docket-agent-approval"):
            assert not any(
                a.startswith("states:") for s in statements(synth, fn.name) for a in actions(s)
            ), fn.name


def test_the_rebuild_passes_only_its_job_role_to_sagemaker(synth: Synth) -> None:
    st = statements(synth, "docket-reembed")
    passed = [s for s in st if "iam:PassRole" in actions(s)]
    assert len(passed) == 1
    assert passed[0]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert "*" not in resources(passed[0])
    jobs = granted(synth, "docket-reembed", "sagemaker:CreateTransformJob")
    assert {json.dumps(j).rsplit(":", 1)[1] for j in jobs} == {
        'model/docket-reembed-*"]]}',
        'transform-job/docket-reembed-*"]]}',
    }


def test_extract_touches_its_own_resources_only(synth: Synth) -> None:
    st = statements(synth, "docket-extract")
    dynamo = [r for s in st for a in actions(s) if a.startswith("dynamodb:") for r in resources(s)]
    assert "*" not in [r for r in dynamo if r != "*"] and all(r != "*" for r in dynamo)
    docs = logical(synth, "AWS::DynamoDB::Table", c.DOCUMENTS_TABLE)
    assert {json.dumps(r) for r in dynamo} == {json.dumps({"Fn::GetAtt": [docs, "Arn"]})}
    assert not any(
        a.startswith(("bedrock:", "ses:", "secretsmanager:")) for s in st for a in actions(s)
    )
    dlq = logical(synth, "AWS::SQS::Queue", c.INGEST_DLQ)
    assert {"Fn::GetAtt": [dlq, "Arn"]} in granted(synth, "docket-extract", "sqs:SendMessage")
    ingest = logical(synth, "AWS::SQS::Queue", c.INGEST_QUEUE)
    assert {"Fn::GetAtt": [ingest, "Arn"]} in granted(synth, "docket-extract", "sqs:ReceiveMessage")


def test_email_only_from_the_sender_identity(synth: Synth) -> None:
    senders = {fn.name for fn in WIRING.functions if granted(synth, fn.name, "ses:SendRawEmail")}
    # the rebuild e-mails the links of its optional cutover approval
    assert senders == {"docket-agent-tool", "docket-agent-approval", "docket-reembed"}
    (identity,) = set(
        json.dumps(r) for r in granted(synth, "docket-agent-tool", "ses:SendRawEmail")
    )
    (ses,) = synth.of_type("AWS::SES::EmailIdentity").items()
    assert ses[1]["Properties"]["EmailIdentity"] == "approvals@example.com"
    assert identity.endswith(f'":identity/", {{"Ref": "{ses[0]}"}}]]}}')


def test_agent_tables_and_index(synth: Synth) -> None:
    agent = logical(synth, "AWS::DynamoDB::Table", c.AGENT_TABLE)
    idem = logical(synth, "AWS::DynamoDB::Table", c.IDEMPOTENCY_TABLE)
    api_query = [json.dumps(r) for r in granted(synth, "docket-api", "dynamodb:Query")]
    assert any(agent in r and "/index/gsi1" in r for r in api_query)
    assert {"Fn::GetAtt": [idem, "Arn"]} in granted(synth, "docket-agent-tool", "dynamodb:PutItem")
    assert not any(idem in json.dumps(r) for r in granted(synth, "docket-api", "dynamodb:PutItem"))


def test_each_state_machine_invokes_exactly_its_own_functions(synth: Synth) -> None:
    machines = synth.wiring("AWS::StepFunctions::StateMachine")
    assert set(machines) == {sm.name for sm in WIRING.state_machines}
    for sm in WIRING.state_machines:
        _, machine = machines[sm.name]
        role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        invoked = [
            r
            for p in synth.of_type("AWS::IAM::Policy").values()
            if {"Ref": role} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if "lambda:InvokeFunction" in actions(s)
            for r in resources(s)
        ]
        expected = {
            json.dumps({"Fn::GetAtt": [logical(synth, "AWS::Lambda::Function", fn), "Arn"]})
            for fn in sm.functions.values()
        }
        assert {json.dumps(r) for r in invoked} == expected, sm.name


def test_only_the_functions_that_sign_or_post_read_the_approval_and_slack_secrets(
    synth: Synth,
) -> None:
    secrets = {
        logical_id: props["Properties"].get("Name", "")
        for logical_id, props in synth.of_type("AWS::SecretsManager::Secret").items()
    }
    link = next(i for i, n in secrets.items() if "approval-link" in json.dumps(n))
    slack = next(i for i, n in secrets.items() if "slack" in json.dumps(n))

    def reads(function: str) -> set[str]:
        read = granted(synth, function, "secretsmanager:GetSecretValue")
        return {i for i in (link, slack) if any(i in json.dumps(r) for r in read)}

    assert reads("docket-api") == {link, slack}  # verifies links and Slack requests
    assert reads("docket-agent-approval") == {link, slack}  # signs links, posts to Slack
    assert reads("docket-reembed") == {link, slack}  # the same, for a cutover's approval
    assert reads("docket-agent-tool") == {slack}  # post_slack_message
    for function in ("docket-extract", "docket-chunk", "docket-embed", "docket-agent-model"):
        assert reads(function) == set(), function


def test_alarms_can_publish_to_their_encrypted_topic(synth: Synth) -> None:
    """CloudWatch cannot use the AWS-managed SNS key: the topic's key must be ours and let it."""
    [topic] = synth.of_type("AWS::SNS::Topic").values()
    key_ref = json.dumps(topic["Properties"]["KmsMasterKeyId"])
    assert "alias/aws/sns" not in key_ref
    keys = {i: k for i, k in synth.of_type("AWS::KMS::Key").items() if i in key_ref}
    [key] = keys.values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(actions(s))
        for s in statements
    )


def test_the_query_role_in_opensearch_covers_what_the_query_and_delete_paths_call() -> None:
    from infra.constructs.search_access import ROLES

    [reader] = ROLES["docket_reader"]["index_permissions"]
    needed = {
        "search",  # _search
        "indices:admin/get",  # opening the index (its aliases and _meta)
        "indices:admin/analyze",  # coordination matching
        "indices:data/write/delete/byquery",  # DELETE /documents, the agent's delete_document
        "indices:admin/refresh*",  # visible at once after a delete
    }
    assert needed <= set(reader["allowed_actions"])
    assert "create_index" not in reader["allowed_actions"]  # only embed creates and writes


def test_job_state_changes_reach_the_rebuild_and_the_job_role_sees_its_prefix(
    synth: Synth,
) -> None:
    rules = synth.of_type("AWS::Events::Rule").values()
    (rule,) = [r for r in rules if "aws.sagemaker" in json.dumps(r)]
    (daily,) = [r for r in rules if r["Properties"].get("ScheduleExpression") == "rate(1 day)"]
    assert json.loads(daily["Properties"]["Targets"][0]["Input"]) == {"action": "cleanup"}
    (sweep,) = [r for r in rules if r["Properties"].get("ScheduleExpression") == "rate(5 minutes)"]
    approval = logical(synth, "AWS::Lambda::Function", "docket-agent-approval")
    assert sweep["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [approval, "Arn"]}
    assert json.loads(sweep["Properties"]["Targets"][0]["Input"]) == {"action": "sweep"}
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["SageMaker Transform Job State Change"]
    assert pattern["detail"]["TransformJobName"] == [{"prefix": "docket-reembed-"}]
    fn = logical(synth, "AWS::Lambda::Function", "docket-reembed")
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [fn, "Arn"]}
    roles = {
        lid: r
        for lid, r in synth.of_type("AWS::IAM::Role").items()
        if "sagemaker.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    }
    (job_role,) = roles
    objects = [
        json.dumps(r)
        for p in synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": job_role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "s3:GetObject" in actions(s)
        for r in resources(s)
    ]
    assert objects and all(o.endswith('/reembed/*"]]}') for o in objects)


def test_every_function_that_searches_reads_the_live_generation(synth: Synth) -> None:
    table = logical(synth, "AWS::DynamoDB::Table", c.GENERATIONS_TABLE)
    arn = {"Fn::GetAtt": [table, "Arn"]}
    for fn in ("docket-embed", "docket-api", "docket-mcp", "docket-agent-tool", "docket-reembed"):
        assert arn in granted(synth, fn, "dynamodb:GetItem"), fn
    # only the API (start, rollback) and the rebuild itself move it
    writers = {
        f.name for f in WIRING.functions if arn in granted(synth, f.name, "dynamodb:PutItem")
    }
    assert writers == {"docket-api", "docket-reembed"}


def test_scans_are_the_rebuilds_of_chunks_and_the_syncs_of_the_source_table(
    synth: Synth,
) -> None:
    chunks = {"Fn::GetAtt": [logical(synth, "AWS::DynamoDB::Table", c.CHUNKS_TABLE), "Arn"]}
    tickets = {"Fn::GetAtt": [logical(synth, "AWS::DynamoDB::Table", c.TICKETS_TABLE), "Arn"]}
    assert granted(synth, "docket-reembed", "dynamodb:Scan") == [chunks]
    # the backfill and `docket sync verify` (in the API) read the synced table whole
    for fn in ("docket-sync", "docket-api"):
        assert granted(synth, fn, "dynamodb:Scan") == [tickets], fn
    for fn in WIRING.functions:
        if fn.name not in ("docket-reembed", "docket-sync", "docket-api"):
            assert not granted(synth, fn.name, "dynamodb:Scan"), fn.name


def test_the_mcp_server_writes_nothing_but_its_rate_limit_and_cached_answers(
    synth: Synth,
) -> None:
    reads = ("dynamodb:Get", "dynamodb:BatchGet", "dynamodb:Query", "dynamodb:ConditionCheck")
    limits = logical(synth, "AWS::DynamoDB::Table", c.LIMITS_TABLE)
    assert granted(synth, "docket-mcp", "dynamodb:UpdateItem") == [{"Fn::GetAtt": [limits, "Arn"]}]

    def writes(action: str) -> bool:
        if action.startswith("dynamodb:"):
            return not action.startswith(reads)
        return action.startswith(("states:", "ses:", "sqs:")) or action in (
            "s3:PutObject",
            "s3:DeleteObject",
            "es:ESHttpPut",
            "es:ESHttpDelete",
        )

    own = ("RateLimits", "AnswerCache")
    cache = logical(synth, "AWS::DynamoDB::Table", c.ANSWER_CACHE_TABLE)
    assert granted(synth, "docket-mcp", "dynamodb:PutItem") == [{"Fn::GetAtt": [cache, "Arn"]}]
    assert not granted(synth, "docket-mcp", "dynamodb:DeleteItem")  # eviction is the embed step's
    rest = [st for st in statements(synth, "docket-mcp") if st.get("Sid") not in own]
    assert [a for st in rest for a in actions(st) if writes(a)] == []
    chunks = logical(synth, "AWS::DynamoDB::Table", c.CHUNKS_TABLE)
    assert {"Fn::GetAtt": [chunks, "Arn"]} in granted(synth, "docket-mcp", "dynamodb:Query")
