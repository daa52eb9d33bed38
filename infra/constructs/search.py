"""Search: an Amazon OpenSearch Service domain (k-NN + BM25) inside the VPC.

Encryption at rest and node to node, HTTPS only (TLS 1.2), fine-grained access control with an
IAM role as master user. The domain's resource policy lets this account's IAM decide (each
function's own policy grants es:ESHttp* on this domain only), and fine-grained access control maps
each function's role to a docket role inside OpenSearch (infra.constructs.search_access).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch

from constructs import Construct
from infra.constructs.nag import acknowledge
from infra.constructs.network import Network
from infra.settings import DeploymentSettings

ENGINE_VERSION = opensearch.EngineVersion.OPENSEARCH_2_19


class SearchDomain(Construct):
    def __init__(
        self, scope: Construct, id: str, *, settings: DeploymentSettings, network: Network
    ) -> None:
        super().__init__(scope, id)
        # The IAM master user of fine-grained access control. Only the role-mapping custom
        # resource (search_access) assumes it by running as it; people use it to administer.
        self.master_role = iam.Role(
            self,
            "MasterRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="docket search domain: fine-grained access control master user",
        )
        logs_group = logs.LogGroup(
            self,
            "DomainLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        subnets = network.vpc.select_subnets(
            subnet_type=network.private_subnets.subnet_type
        ).subnets[: max(1, min(2, settings.opensearch_data_nodes))]
        zone_awareness = len(subnets) > 1
        self.domain = opensearch.Domain(
            self,
            "Domain",
            version=ENGINE_VERSION,
            vpc=network.vpc,
            vpc_subnets=[ec2.SubnetSelection(subnets=subnets)],
            security_groups=[network.domain_sg],
            capacity=opensearch.CapacityConfig(
                data_nodes=settings.opensearch_data_nodes,
                data_node_instance_type=settings.opensearch_instance_type,
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(
                volume_size=settings.opensearch_volume_gb,
                volume_type=ec2.EbsDeviceVolumeType.GP3,
            ),
            zone_awareness=opensearch.ZoneAwarenessConfig(
                enabled=zone_awareness, availability_zone_count=2 if zone_awareness else None
            ),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            fine_grained_access_control=opensearch.AdvancedSecurityOptions(
                master_user_arn=self.master_role.role_arn
            ),
            logging=opensearch.LoggingOptions(
                app_log_enabled=True,
                app_log_group=logs_group,
                slow_search_log_enabled=True,
                slow_search_log_group=logs_group,
                slow_index_log_enabled=True,
                slow_index_log_group=logs_group,
            ),
            removal_policy=RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY,
        )
        # IAM in this account decides who may call the domain (no anonymous access): the
        # functions' own policies name this domain; fine-grained access control then applies.
        self.domain.add_access_policies(
            iam.PolicyStatement(
                principals=[iam.AccountRootPrincipal()],
                actions=["es:ESHttp*"],
                resources=[f"{self.domain.domain_arn}/*"],
            )
        )
        self.endpoint = self.domain.domain_endpoint
        self.domain_arn = self.domain.domain_arn
        acknowledge(
            self.domain,
            "AwsSolutions-OS3",
            "The domain has no public endpoint: it lives in private subnets and its security "
            "group admits HTTPS only from the docket functions' group; callers are IAM roles "
            "of this account (SigV4), not IP addresses.",
        )
        acknowledge(
            self.domain,
            "AwsSolutions-OS4",
            "Small deployment: two data nodes without dedicated masters; add three dedicated "
            "master nodes (opensearchDedicatedMasters) before the domain grows past ~10 nodes.",
        )
