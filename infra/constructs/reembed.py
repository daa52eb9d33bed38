"""Re-embedding (P6): the SageMaker job's role and the EventBridge rule that resumes a waiting
rebuild when its transform job ends. The state machine itself is one of WIRING's (agent.py
builds every one); the function's grants are in access.py."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3

from constructs import Construct
from infra.constructs.nag import allow
from infra.constructs.schedule import every

PREFIX = "reembed/*"


def reembed_job_role(
    scope: Construct, bucket: s3.IBucket, model_data: str | None = None
) -> iam.Role:
    """What the transform job may do: read its input shards and write its outputs, under the
    text bucket's ``reembed/`` prefix only (plus its own logs and the image pull, which
    SageMaker's execution role needs)."""
    role = iam.Role(
        scope,
        "ReembedJobRole",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description="docket re-embedding Batch Transform jobs",
    )
    allow(
        role,
        "JobShards",
        ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
        [bucket.arn_for_objects(PREFIX)],
        reason="The job reads and writes the shards of a generation under reembed/{g}/: object "
        "ARNs need a key pattern.",
    )
    allow(
        role,
        "ListJobShards",
        ["s3:ListBucket"],
        [bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": [PREFIX]}},
    )
    if model_data:  # s3://bucket/key of the model artifact SageMaker unpacks into /opt/ml/model
        if not model_data.startswith("s3://") or "/" not in model_data[5:]:
            raise ValueError(
                f"docket:reembedJobModelData must be s3://bucket/key, got {model_data}"
            )
        allow(role, "ModelArtifact", ["s3:GetObject"], [f"arn:aws:s3:::{model_data[5:]}"])
    allow(
        role,
        "JobLogs",
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        ["arn:aws:logs:*:*:log-group:/aws/sagemaker/TransformJobs*"],
        reason="SageMaker names the job's log streams at run time under this group.",
    )
    allow(
        role,
        "PullImage",
        ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        ["*"],
        reason="The container image comes from configuration (any repository); "
        "GetAuthorizationToken has no resource-level permission.",
    )
    return role


class ReembedEvents(Construct):
    """SageMaker's "Transform Job State Change" events of docket's jobs → the re-embed function,
    which sends the waiting EmbedBatch state its task token back."""

    def __init__(self, scope: Construct, id: str, *, function: lambda_.IFunction) -> None:
        super().__init__(scope, id)
        self.rule = events.Rule(
            self,
            "JobStateChange",
            description="docket re-embedding jobs that end resume their rebuild",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Transform Job State Change"],
                detail={
                    "TransformJobName": [{"prefix": "docket-reembed-"}],
                    "TransformJobStatus": ["Completed", "Failed", "Stopped"],
                },
            ),
        )
        self.rule.add_target(targets.LambdaFunction(function))
        # retired generations are deleted once their retention ends, even with no new cutover
        self.cleanup = every(
            self,
            "Cleanup",
            rate=Duration.days(1),
            function=function,
            event={"action": "cleanup"},
            description="docket: delete index generations retired longer than their retention",
        )
