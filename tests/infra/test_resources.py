"""The synthesized template: counts, encryption, streams, DLQs, event sources, the search domain,
the HTTP API and the state machine, asserted with aws_cdk.assertions.Template."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Match, Template
from infra.constructs.observability import dead_letter_queues

from docket.wiring import WIRING
from infra import constants as c

from .conftest import CONTEXT, STAGE, Synth


@pytest.fixture(scope="module")
def template(synth: Synth) -> Template:
    return Template.from_json(synth.template)


def test_one_resource_per_wiring_entry(synth: Synth, template: Template) -> None:
    assert len(synth.wiring("AWS::Lambda::Function")) == len(WIRING.functions)
    template.resource_count_is("AWS::DynamoDB::Table", len(WIRING.tables))
    template.resource_count_is("AWS::SQS::Queue", len(WIRING.queues))
    template.resource_count_is("AWS::S3::Bucket", len(WIRING.buckets) + 1)  # + access logs
    template.resource_count_is("AWS::StepFunctions::StateMachine", len(WIRING.state_machines))
    template.resource_count_is("AWS::Lambda::EventSourceMapping", len(WIRING.event_sources))
    template.resource_count_is("AWS::Lambda::LayerVersion", 1)
    template.resource_count_is("AWS::OpenSearchService::Domain", 1)


def test_every_docket_function_uses_the_one_layer_and_its_own_role(synth: Synth) -> None:
    functions = synth.wiring("AWS::Lambda::Function")
    (layer,) = synth.of_type("AWS::Lambda::LayerVersion")
    roles = set()
    for name, (_, fn) in functions.items():
        props = fn["Properties"]
        assert props["Layers"] == [{"Ref": layer}], name
        assert props["Runtime"] == "python3.11"
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["FunctionName"] == f"{name}-{STAGE}"
        roles.add(props["Role"]["Fn::GetAtt"][0])
    assert len(roles) == len(functions)


def test_every_function_logs_to_its_own_group_with_retention(synth: Synth) -> None:
    groups = synth.of_type("AWS::Logs::LogGroup")
    for name, (_, fn) in synth.wiring("AWS::Lambda::Function").items():
        ref = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[ref]["Properties"]["RetentionInDays"] == c.LOG_RETENTION_DAYS, name
        assert groups[ref]["Properties"]["LogGroupName"] == f"/aws/lambda/{name}-{STAGE}"
    assert all("RetentionInDays" in g["Properties"] for g in groups.values())


def test_tables_streams_pitr_encryption(synth: Synth) -> None:
    tables = synth.wiring("AWS::DynamoDB::Table")
    for spec in WIRING.tables:
        props = tables[spec.name][1]["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        if spec.stream:
            assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
        else:
            assert "StreamSpecification" not in props
    agent = tables[c.AGENT_TABLE][1]["Properties"]
    assert [g["IndexName"] for g in agent["GlobalSecondaryIndexes"]] == ["gsi1"]
    idem = tables[c.IDEMPOTENCY_TABLE][1]["Properties"]
    assert idem["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_queues_encrypted_with_dead_letter_redrive(synth: Synth) -> None:
    queues = synth.wiring("AWS::SQS::Queue")
    for spec in WIRING.queues:
        props = queues[spec.name][1]["Properties"]
        assert props["SqsManagedSseEnabled"] is True
        assert props["VisibilityTimeout"] == spec.visibility_timeout
        if spec.dead_letter_queue:
            redrive = props["RedrivePolicy"]
            assert redrive["maxReceiveCount"] == spec.max_receive_count
            target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert synth.name_of(target) == spec.dead_letter_queue
    # every queue refuses plain HTTP
    policies = synth.of_type("AWS::SQS::QueuePolicy")
    secured = {
        q["Ref"]
        for p in policies.values()
        if any(
            s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
        for q in p["Properties"]["Queues"]
    }
    assert secured == {logical for logical, _ in queues.values()}


def test_buckets_encrypted_private_and_ssl_only(synth: Synth, template: Template) -> None:
    for logical, bucket in synth.of_type("AWS::S3::Bucket").items():
        props = bucket["Properties"]
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", logical
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
    policies = synth.of_type("AWS::S3::BucketPolicy")
    secured = {
        p["Properties"]["Bucket"]["Ref"]
        for p in policies.values()
        if any(
            s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            and s["Effect"] == "Deny"
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    }
    assert secured == set(synth.of_type("AWS::S3::Bucket"))
    documents = synth.wiring("AWS::S3::Bucket")[c.DOCUMENTS_BUCKET][1]["Properties"]
    assert documents["VersioningConfiguration"] == {"Status": "Enabled"}


def test_event_source_mappings(synth: Synth) -> None:
    mappings = list(synth.of_type("AWS::Lambda::EventSourceMapping").values())
    for es in WIRING.event_sources:
        fn_logical = synth.wiring("AWS::Lambda::Function")[es.function][0]
        (m,) = [m for m in mappings if m["Properties"]["FunctionName"] == {"Ref": fn_logical}]
        props = m["Properties"]
        assert props["BatchSize"] == es.batch_size
        assert props.get("MaximumBatchingWindowInSeconds", 0) == c.batching_window_seconds(
            es.max_batching_window_s
        )
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        if es.kind == "dynamodb_stream":
            assert props["BisectBatchOnFunctionError"] is True
            assert props["MaximumRetryAttempts"] == es.max_retry_attempts
            dest = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
            assert synth.name_of(dest) == es.on_failure_queue
            assert props["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"


def test_batching_window_rounds_up_to_whole_seconds() -> None:
    assert c.batching_window_seconds(0) == 0
    assert c.batching_window_seconds(0.2) == 1
    assert c.batching_window_seconds(1.0) == 1
    assert c.batching_window_seconds(2.5) == 3


def test_search_domain(synth: Synth) -> None:
    (domain,) = synth.of_type("AWS::OpenSearchService::Domain").values()
    props = domain["Properties"]
    engine, version = props["EngineVersion"].split("_")
    assert engine == "OpenSearch"
    assert tuple(int(p) for p in version.split(".")) >= (2, 19)
    assert props["EncryptionAtRestOptions"] == {"Enabled": True}
    assert props["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert props["DomainEndpointOptions"]["EnforceHTTPS"] is True
    security = props["AdvancedSecurityOptions"]
    assert security["Enabled"] is True and security["InternalUserDatabaseEnabled"] is False
    assert "MasterUserARN" in security["MasterUserOptions"]
    assert props["ClusterConfig"]["InstanceType"] == c.OPENSEARCH_INSTANCE_TYPE
    assert props["EBSOptions"]["VolumeType"] == "gp3"
    vpc = props["VPCOptions"]
    assert len(vpc["SubnetIds"]) == 2 and len(vpc["SecurityGroupIds"]) == 1
    # the domain's group admits 443 from the functions' group only
    sg_logical = vpc["SecurityGroupIds"][0]["Fn::GetAtt"][0]
    sg = synth.resources[sg_logical]["Properties"]
    assert "SecurityGroupIngress" not in sg or sg["SecurityGroupIngress"] == []
    ingress = [
        r["Properties"]
        for r in synth.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"]["Fn::GetAtt"][0] == sg_logical
    ]
    assert len(ingress) == 1
    assert ingress[0]["FromPort"] == ingress[0]["ToPort"] == 443
    assert "SourceSecurityGroupId" in ingress[0]
    # only the search-facing functions sit in the VPC, in that group
    in_vpc = {
        name
        for name, (_, fn) in synth.wiring("AWS::Lambda::Function").items()
        if "VpcConfig" in fn["Properties"]
    }
    assert in_vpc == set(c.VPC_FUNCTIONS)


def test_http_api_lambda_authorizer_and_public_routes(synth: Synth) -> None:
    (authorizer,) = synth.of_type("AWS::ApiGatewayV2::Authorizer").values()
    props = authorizer["Properties"]
    # one authorizer for JWTs and API keys: simple responses, cached a minute per header
    assert props["AuthorizerType"] == "REQUEST"
    assert props["AuthorizerPayloadFormatVersion"] == "2.0"
    assert props["EnableSimpleResponses"] is True
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    assert props["AuthorizerResultTtlInSeconds"] == 60
    function, fn = synth.wiring("AWS::Lambda::Function")[WIRING.authorizer_function]
    assert function in json.dumps(props["AuthorizerUri"])
    env = fn["Properties"]["Environment"]["Variables"]
    assert env["DOCKET_TOKEN_ISSUER"] == CONTEXT["docket:jwtIssuer"]
    assert env["DOCKET_TOKEN_AUDIENCE"] == ",".join(CONTEXT["docket:jwtAudience"])
    assert env["DOCKET_AUTH_MODE"] == "jwt_authorizer"
    assert "DOCKET_KEYS_TABLE" in env
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in synth.of_type("AWS::ApiGatewayV2::Route").values()
    }
    public = {f"{m} {p}" for m, p in c.PUBLIC_ROUTES}
    assert public == {
        "GET /approvals/{approval_id}",
        "POST /approvals/{approval_id}",
        "POST /slack/interactions",
        "GET /health",
        "GET /openapi.json",
    }
    assert set(routes) == public | {"ANY /{proxy+}", "ANY /mcp"}  # /mcp: the MCP server
    for key, route in routes.items():
        if key in public:
            assert route.get("AuthorizationType", "NONE") == "NONE", key
        else:
            assert route["AuthorizationType"] == "CUSTOM", key
    (stage,) = synth.of_type("AWS::ApiGatewayV2::Stage").values()
    assert "AccessLogSettings" in stage["Properties"]


def test_state_machine_definition_and_substitutions(synth: Synth) -> None:
    functions = {n: logical for n, (logical, _) in synth.wiring("AWS::Lambda::Function").items()}
    for spec in WIRING.state_machines:
        _, machine = synth.wiring("AWS::StepFunctions::StateMachine")[spec.name]
        props = machine["Properties"]
        assert props["StateMachineName"] == f"{spec.name}-{STAGE}"
        assert props.get("StateMachineType", "STANDARD") == "STANDARD"
        assert props["TracingConfiguration"] == {"Enabled": True}
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        subs = props["DefinitionSubstitutions"]
        assert subs == {
            ph: {"Fn::GetAtt": [functions[fn], "Arn"]} for ph, fn in spec.functions.items()
        }
        definition = synth.definition(machine)
        filled = definition
        for ph in subs:
            filled = filled.replace("${" + ph + "}", f"arn:function:{ph}")
        assert not re.search(r"\$\{[A-Za-z]+\}", filled), "a placeholder is left unfilled"
        json.loads(filled)
        for ph in spec.functions:
            assert f"arn:function:{ph}" in filled


def test_alarms_on_dead_letters_errors_throttles_and_executions(synth: Synth) -> None:
    alarms = [a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()]
    by_metric: dict[str, int] = {}
    for a in alarms:
        by_metric[a["MetricName"]] = by_metric.get(a["MetricName"], 0) + 1
        assert a["AlarmActions"], "every alarm notifies the topic"
    assert by_metric["ApproximateNumberOfMessagesVisible"] == len(dead_letter_queues(WIRING))
    assert by_metric["Errors"] == len(WIRING.functions)
    assert by_metric["Throttles"] == len(WIRING.functions)
    assert by_metric["ExecutionsFailed"] == len(WIRING.state_machines)
    assert by_metric["ExecutionsTimedOut"] == len(WIRING.state_machines)
    assert len(synth.of_type("AWS::CloudWatch::Dashboard")) == 1
    (topic,) = synth.of_type("AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    (subscription,) = synth.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == CONTEXT["docket:alarmEmail"]


def test_template_matchers_for_the_ingest_notification(template: Template) -> None:
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {
                "QueueConfigurations": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Events": ["s3:ObjectCreated:*"],
                                "Filter": {
                                    "Key": {
                                        "FilterRules": [{"Name": "prefix", "Value": "tenants/"}]
                                    }
                                },
                            }
                        )
                    ]
                )
            }
        },
    )
