"""DaxCluster: a DynamoDB Accelerator cluster in private subnets, encrypted at rest, reached
only over TLS and only from the security group of the functions that use it.

The subnets come from a VPC given by argument, or from a minimal private VPC the component
creates: no internet gateway and no NAT, with a DynamoDB gateway endpoint so the functions
reach the table directly when they must bypass the cache."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components import defaults, regions
from components.args import check_args
from components.naming import physical_name

TOKEN = "serverless-cases:cache:DaxCluster"
NETWORK_TOKEN = "serverless-cases:network:PrivateNetwork"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrivateNetworkArgs:
    cidr: str = defaults.VPC_CIDR
    subnet_count: int = defaults.VPC_SUBNET_COUNT
    gateway_endpoints: Sequence[str] = ("dynamodb",)
    """AWS services reached through gateway endpoints instead of a NAT gateway."""

    def problems(self) -> list[str]:
        problems = []
        try:
            net = ipaddress.ip_network(self.cidr)
            if net.prefixlen > 24:
                problems.append(f"cidr: {self.cidr} is smaller than a /24")
        except ValueError:
            problems.append(f"cidr: {self.cidr!r} is not a CIDR block")
        if not 2 <= self.subnet_count <= 3:
            problems.append(f"subnet_count: {self.subnet_count} is outside 2..3")
        return problems


class PrivateNetwork(pulumi.ComponentResource):
    """A VPC with private subnets only, spread over availability zones."""

    vpc: aws.ec2.Vpc
    subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: PrivateNetworkArgs | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(NETWORK_TOKEN, name, None, opts)
        args = args or PrivateNetworkArgs()
        check_args(args, component=NETWORK_TOKEN)
        child = pulumi.ResourceOptions(parent=self)
        self.vpc = aws.ec2.Vpc(name, cidr_block=args.cidr, enable_dns_hostnames=True, enable_dns_support=True,
                               opts=child)
        zones = aws.get_availability_zones_output(state="available")
        blocks = list(ipaddress.ip_network(args.cidr).subnets(new_prefix=24))[: args.subnet_count]
        self.route_table = aws.ec2.RouteTable(f"{name}-private", vpc_id=self.vpc.id, opts=child)
        subnets = []
        for i, block in enumerate(blocks):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{i}", vpc_id=self.vpc.id, cidr_block=str(block),
                availability_zone=zones.names[i], map_public_ip_on_launch=False, opts=child)
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=self.route_table.id, opts=child)
            subnets.append(subnet)
        region = aws.get_region_output().region
        for service in args.gateway_endpoints:
            aws.ec2.VpcEndpoint(
                f"{name}-{service}", vpc_id=self.vpc.id, vpc_endpoint_type="Gateway",
                service_name=pulumi.Output.concat("com.amazonaws.", region, f".{service}"),
                route_table_ids=[self.route_table.id], opts=child)
        self.subnet_ids = pulumi.Output.all(*[s.id for s in subnets])
        self.register_outputs({"vpc_id": self.vpc.id, "subnet_ids": self.subnet_ids})


@dataclasses.dataclass(frozen=True, kw_only=True)
class DaxClusterArgs:
    table_arns: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The tables the cluster reads and writes through."""
    vpc_id: str | None = None
    subnet_ids: Sequence[str] = ()
    """Existing private subnets (with vpc_id); when absent a PrivateNetwork is created."""
    node_type: str = defaults.DAX_NODE_TYPE
    replication_factor: int = defaults.DAX_REPLICATION_FACTOR

    def problems(self) -> list[str]:
        problems = []
        if (self.vpc_id is None) != (not self.subnet_ids):
            problems.append("vpc_id and subnet_ids go together")
        if not 1 <= self.replication_factor <= 10:
            problems.append(f"replication_factor: {self.replication_factor} is outside 1..10")
        if not self.node_type.startswith("dax."):
            problems.append(f"node_type: {self.node_type!r} is not a DAX node type")
        return problems


def require_dax(component: str) -> None:
    """Refuse a region where AWS does not offer DAX (:func:`regions.require_service`): a case that
    will make a cluster calls it before it makes anything."""
    regions.require_service(component, "dax", "DynamoDB Accelerator (DAX)", "the cache cluster")


class DaxCluster(pulumi.ComponentResource):
    cluster: aws.dax.Cluster
    client_security_group: aws.ec2.SecurityGroup
    """Attach this group to the functions that use the cluster: it is the only one let in."""
    subnet_ids: pulumi.Output[list[str]]
    endpoint: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: DaxClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        check_args(args, component=TOKEN)
        require_dax(TOKEN)
        child = pulumi.ResourceOptions(parent=self)
        if args.replication_factor < defaults.DAX_REPLICATION_FACTOR:
            pulumi.log.info(f"{name}: replication_factor={args.replication_factor} gives no multi-AZ failover")

        vpc_id: pulumi.Input[str]
        if args.vpc_id is None:
            self.network: PrivateNetwork | None = PrivateNetwork(f"{name}-net", opts=child)
            vpc_id, self.subnet_ids = self.network.vpc.id, self.network.subnet_ids
        else:
            self.network = None
            vpc_id, self.subnet_ids = args.vpc_id, pulumi.Output.from_input(list(args.subnet_ids))

        self.client_security_group = aws.ec2.SecurityGroup(
            f"{name}-clients", vpc_id=vpc_id, description="Functions that use the DAX cluster", opts=child)
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-clients-https", security_group_id=self.client_security_group.id, ip_protocol="tcp",
            from_port=443, to_port=443, cidr_ipv4="0.0.0.0/0", description="AWS APIs through VPC endpoints",
            opts=child)
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-cluster", vpc_id=vpc_id, description="DAX cluster: TLS from its clients only", opts=child)
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-clients", security_group_id=self.security_group.id, ip_protocol="tcp",
            from_port=defaults.DAX_TLS_PORT, to_port=defaults.DAX_TLS_PORT,
            referenced_security_group_id=self.client_security_group.id, description="DAX over TLS", opts=child)
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-clients-to-dax", security_group_id=self.client_security_group.id, ip_protocol="tcp",
            from_port=defaults.DAX_TLS_PORT, to_port=defaults.DAX_TLS_PORT,
            referenced_security_group_id=self.security_group.id, description="DAX over TLS", opts=child)

        self.role = aws.iam.Role(
            f"{name}-role", assume_role_policy=defaults.assume_role_policy("dax.amazonaws.com"), opts=child)
        aws.iam.RolePolicy(
            f"{name}-tables", role=self.role.id,
            policy=pulumi.Output.from_input(args.table_arns).apply(lambda arns: defaults.policy_document([
                defaults.allow(
                    ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
                     "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
                     "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"],
                    [*arns, *[f"{a}/index/*" for a in arns]], sid="CachedTables")])),
            opts=child)
        self.subnet_group = aws.dax.SubnetGroup(f"{name}-subnets", subnet_ids=self.subnet_ids, opts=child)
        self.cluster = aws.dax.Cluster(
            name,
            cluster_name=physical_name(name, max_length=20),
            node_type=args.node_type,
            replication_factor=args.replication_factor,
            iam_role_arn=self.role.arn,
            subnet_group_name=self.subnet_group.name,
            security_group_ids=[self.security_group.id],
            server_side_encryption={"enabled": True},
            cluster_endpoint_encryption_type="TLS",
            opts=child,
        )
        self.endpoint = self.cluster.configuration_endpoint
        self.arn = self.cluster.arn
        self.register_outputs({"endpoint": self.endpoint, "arn": self.arn})

    def statements(self) -> pulumi.Output[list[dict]]:
        """What a function needs to use the cluster (DAX data-plane actions on it only)."""
        return self.cluster.arn.apply(lambda arn: [defaults.allow(
            ["dax:GetItem", "dax:BatchGetItem", "dax:Query", "dax:PutItem", "dax:UpdateItem", "dax:DeleteItem",
             "dax:BatchWriteItem", "dax:ConditionCheckItem"], [arn], sid="OwnDaxCluster")])
