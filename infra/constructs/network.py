"""Network: a two-AZ VPC for the search domain and the functions that query it.

Private subnets reach the internet through one NAT gateway (the hosted model providers, Slack and
the agent's HTTP tool are on the internet); S3 and DynamoDB traffic takes free gateway endpoints
instead. No lookups: the VPC is declared, so synth needs no account.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs

from constructs import Construct
from infra.settings import DeploymentSettings


class Network(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: DeploymentSettings) -> None:
        super().__init__(scope, id)
        private = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS
            if settings.nat_gateways > 0
            else ec2.SubnetType.PRIVATE_ISOLATED
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=settings.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(name="private", subnet_type=private, cidr_mask=22),
            ]
            if settings.nat_gateways > 0
            else [ec2.SubnetConfiguration(name="private", subnet_type=private, cidr_mask=22)],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(
                    service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
                ),
            },
            flow_logs={
                "RejectedTraffic": ec2.FlowLogOptions(
                    traffic_type=ec2.FlowLogTrafficType.REJECT,
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                        logs.LogGroup(self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH)
                    ),
                )
            },
        )
        self.private_subnets = ec2.SubnetSelection(subnet_type=private)
        # the functions that call the domain; the domain admits HTTPS from this group only
        self.functions_sg = ec2.SecurityGroup(
            self,
            "SearchClients",
            vpc=self.vpc,
            description="docket functions that query or write the search domain",
            allow_all_outbound=True,
        )
        self.domain_sg = ec2.SecurityGroup(
            self,
            "SearchDomain",
            vpc=self.vpc,
            description="docket search domain: HTTPS from the docket functions only",
            allow_all_outbound=False,
        )
        self.domain_sg.add_ingress_rule(
            self.functions_sg, ec2.Port.tcp(443), "HTTPS from the docket functions"
        )
