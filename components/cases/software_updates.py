"""Case software-updates: CloudFront in front of an Auto Scaling group's load balancer.

"No change to architecture": the load balancer stays the origin. Static update files
(``cached_paths``, default ``/updates/*``) are cached long at the edge and compressed;
everything else passes through uncached. The origin cannot be bypassed: CloudFront adds a
generated secret header, and the listener forwards only requests carrying it (everything
else gets 403). Viewers are redirected to HTTPS.

Give an existing load balancer (its ARN, DNS name, HTTP listener and target group), or let
the component build a small demonstration one: a launch template serving update files,
an Auto Scaling group and an Application Load Balancer open only to CloudFront.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.access_logs import CaseLogs
from components.args import CaseArgs, CustomDomainArgs, SharedHeadersArgs, WafArgs, check_args, component_args
from components.cdn import headers_policy_id, security_headers_policy
from components.generated import RandomToken
from components.naming import physical_name
from components.waf import CaseFirewalls

TOKEN = "serverless-cases:cases:SoftwareUpdates"
DESCRIPTION = (
    "Software updates: CloudFront caches the static update files of an existing EC2 Auto Scaling group's load "
    "balancer at the edge (or of a demonstration one it creates); the origin accepts only CloudFront's requests."
)
ORIGIN_HEADER = "X-Origin-Verify"
# AWS managed policies.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
DEMO_VPC_CIDR = "10.30.0.0/16"
READ_METHODS = ["GET", "HEAD", "OPTIONS"]
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
_EXISTING = ("load_balancer_dns_name", "listener_arn", "target_group_arn")


@component_args
class SoftwareUpdatesArgs(CaseArgs, CustomDomainArgs, SharedHeadersArgs, WafArgs):
    load_balancer_dns_name: str | None = None
    """An existing load balancer's DNS name (with listener_arn and target_group_arn)."""
    listener_arn: str | None = None
    """Its HTTP listener: the component adds the rules that admit only CloudFront."""
    target_group_arn: str | None = None
    """The target group of the Auto Scaling group's instances."""
    cached_paths: list[str] = dataclasses.field(default_factory=lambda: ["/updates/*"])
    cache_ttl_seconds: int = 86_400
    cache_policy_id: str | None = None
    """A CloudFront cache policy the account already has, for the cached paths instead of the
    stack's own (whose TTL is cache_ttl_seconds, then unused): an account holds 20 cache policies
    (a CloudFront quota), so past 20 software-updates stacks they share one."""
    origin_protocol: str = "https-only"
    """How CloudFront reaches an existing load balancer: ``https-only`` (TLS 1.2; the load balancer
    needs an HTTPS listener whose certificate covers load_balancer_dns_name) or ``http-only``
    (the secret origin header and the files cross the internet in clear text: loud). The
    demonstration origin is an internal load balancer reached through a CloudFront VPC origin."""
    forward_all_methods: bool = False
    """Forward PUT, POST, PATCH and DELETE to the origin too (default: GET, HEAD, OPTIONS only)."""
    secret_rotation: int = 0
    """Change to rotate the origin secret header."""
    instance_type: str = "t3.micro"

    def problems(self) -> list[str]:
        problems = self.tag_problems()
        problems += self.domain_problems()
        problems += self.shared_headers_problems()
        problems += defaults.cloudfront_policy_id_problems("cache_policy_id", self.cache_policy_id)
        given = [f for f in _EXISTING if getattr(self, f) is not None]
        if given and len(given) != len(_EXISTING):
            problems.append(f"an existing load balancer needs all of {', '.join(_EXISTING)}")
        if not self.cached_paths:
            problems.append("cached_paths: at least one path pattern")
        for pattern in self.cached_paths:
            if not re.fullmatch(r"/[A-Za-z0-9._\-/*?]*", pattern):
                problems.append(f"cached_paths: {pattern!r} is not a CloudFront path pattern starting with '/'")
        if len(set(self.cached_paths)) != len(self.cached_paths):
            problems.append("cached_paths: duplicate patterns")
        if not 60 <= self.cache_ttl_seconds <= 31_536_000:
            problems.append(f"cache_ttl_seconds: {self.cache_ttl_seconds} is outside 60..31536000")
        if self.origin_protocol not in ("http-only", "https-only"):
            problems.append(f"origin_protocol: {self.origin_protocol!r} is not 'http-only' or 'https-only'")
        return problems


USER_DATA = """#!/bin/bash
set -eu
mkdir -p /srv/updates
echo '{"latest": "1.0.0", "files": ["app-1.0.0.tar.gz"]}' > /srv/updates/manifest.json
head -c 1048576 /dev/urandom > /srv/updates/app-1.0.0.tar.gz
cat > /etc/systemd/system/updates.service <<'UNIT'
[Unit]
Description=Serve update files
After=network.target
[Service]
ExecStart=/usr/bin/python3 -m http.server 80 --directory /srv
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
systemctl enable --now updates.service
"""


class DemoOrigin(pulumi.ComponentResource):
    """A small Auto Scaling group of update servers behind an *internal* ALB in private subnets,
    reached only through a CloudFront VPC origin: update files and the secret origin header never
    cross the internet between CloudFront and the origin."""

    def __init__(self, name: str, instance_type: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-cases:cases:DemoUpdateOrigin", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=DEMO_VPC_CIDR, enable_dns_hostnames=True, opts=child)
        # CloudFront VPC origins need an internet gateway on the VPC; no subnet routes to it.
        aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        zones = aws.get_availability_zones_output(state="available")
        subnets = [aws.ec2.Subnet(f"{name}-private-{i}", vpc_id=vpc.id, cidr_block=f"10.30.{i}.0/24",
                                  availability_zone=zones.names[i], map_public_ip_on_launch=False, opts=child)
                   for i in range(2)]
        alb_group = aws.ec2.SecurityGroup(f"{name}-alb", vpc_id=vpc.id,
                                          description="HTTP from CloudFront's VPC origin interfaces only", opts=child)
        # CloudFront's VPC origin reaches the ALB from network interfaces it places in these subnets.
        aws.vpc.SecurityGroupIngressRule(f"{name}-alb-from-cloudfront", security_group_id=alb_group.id,
                                         ip_protocol="tcp", from_port=80, to_port=80, cidr_ipv4=DEMO_VPC_CIDR,
                                         description="CloudFront VPC origin", opts=child)
        servers = aws.ec2.SecurityGroup(f"{name}-servers", vpc_id=vpc.id, description="HTTP from the ALB only",
                                        opts=child)
        aws.vpc.SecurityGroupIngressRule(f"{name}-servers-from-alb", security_group_id=servers.id, ip_protocol="tcp",
                                         from_port=80, to_port=80, referenced_security_group_id=alb_group.id,
                                         opts=child)
        aws.vpc.SecurityGroupEgressRule(f"{name}-alb-to-servers", security_group_id=alb_group.id, ip_protocol="tcp",
                                        from_port=80, to_port=80, referenced_security_group_id=servers.id, opts=child)
        ami = aws.ssm.get_parameter_output(name=AMI_PARAMETER)
        template = aws.ec2.LaunchTemplate(
            f"{name}-servers", image_id=ami.value, instance_type=instance_type,
            vpc_security_group_ids=[servers.id],
            user_data=base64.b64encode(USER_DATA.encode()).decode(),
            metadata_options={"http_tokens": "required", "http_endpoint": "enabled"},
            block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {"encrypted": "true", "volume_size": 8}}],
            opts=child)
        # A load balancer's and a target group's names hold at most 32 characters, and the AWS provider
        # autonames them <logical name>-<7 random>: their logical names stay within 24 characters
        # (the aliases keep stacks made under their first, longer names).
        self.balancer = aws.lb.LoadBalancer(
            f"{name}-lb", load_balancer_type="application", internal=True, security_groups=[alb_group.id],
            subnets=[s.id for s in subnets], drop_invalid_header_fields=True,
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=f"{name}-alb")]))
        self.target_group = aws.lb.TargetGroup(
            f"{name}-tg", port=80, protocol="HTTP", vpc_id=vpc.id,
            health_check={"path": "/updates/manifest.json", "matcher": "200"},
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=f"{name}-servers")]))
        self.listener = aws.lb.Listener(
            f"{name}-http", load_balancer_arn=self.balancer.arn, port=80, protocol="HTTP",
            default_actions=[_forbidden()], opts=child)
        aws.autoscaling.Group(
            f"{name}-servers", min_size=2, max_size=4, desired_capacity=2,
            vpc_zone_identifiers=[s.id for s in subnets], target_group_arns=[self.target_group.arn],
            health_check_type="ELB", launch_template={"id": template.id, "version": "$Latest"}, opts=child)
        self.vpc_origin = aws.cloudfront.VpcOrigin(f"{name}-origin", vpc_origin_endpoint_config={
            # Named per stack: every stack of a case names its component alike, and one account
            # can hold many software-updates stacks.
            "name": physical_name(f"{name}-origin", max_length=64), "arn": self.balancer.arn,
            "http_port": 80, "https_port": 443,
            # Inside the AWS network, from CloudFront's interfaces in this VPC to the internal ALB.
            "origin_protocol_policy": "http-only",
            "origin_ssl_protocols": {"items": ["TLSv1.2"], "quantity": 1},
        }, opts=pulumi.ResourceOptions(parent=self, depends_on=[self.listener]))
        self.register_outputs({"dns_name": self.balancer.dns_name})


def _forbidden() -> dict[str, Any]:
    return {"type": "fixed-response",
            "fixed_response": {"content_type": "text/plain", "message_body": "Forbidden", "status_code": "403"}}


class SoftwareUpdates(pulumi.ComponentResource):
    def __init__(self, name: str, args: SoftwareUpdatesArgs | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        args = args or SoftwareUpdatesArgs()
        check_args(args, component=TOKEN)
        child = pulumi.ResourceOptions(parent=self)

        self.origin_secret = RandomToken(f"{name}-origin-secret", rotation=args.secret_rotation, opts=child)
        origin_access: dict[str, Any]
        if args.listener_arn is None:
            demo = DemoOrigin(f"{name}-demo", args.instance_type, opts=child)
            origin_dns: pulumi.Input[str] = demo.balancer.dns_name
            origin_access = {"vpc_origin_config": {"vpc_origin_id": demo.vpc_origin.id}}
            listener_arn: pulumi.Input[str] = demo.listener.arn
            target_group_arn: pulumi.Input[str] = demo.target_group.arn
        else:
            assert args.load_balancer_dns_name is not None and args.target_group_arn is not None
            origin_dns, listener_arn, target_group_arn = (args.load_balancer_dns_name, args.listener_arn,
                                                          args.target_group_arn)
            if args.origin_protocol != "https-only":
                defaults.warn_weakened(name, "origin_protocol", args.origin_protocol, "https-only")
            origin_access = {"custom_origin_config": {
                "http_port": 80, "https_port": 443, "origin_protocol_policy": args.origin_protocol,
                "origin_ssl_protocols": ["TLSv1.2"]}}
            # The listener's own default stays; this catch-all after our rule answers 403.
            aws.lb.ListenerRule(f"{name}-deny-others", listener_arn=listener_arn, priority=50_000,
                                actions=[_forbidden()], conditions=[{"path_pattern": {"values": ["/*"]}}], opts=child)
        aws.lb.ListenerRule(
            f"{name}-from-cloudfront", listener_arn=listener_arn, priority=10,
            actions=[{"type": "forward", "target_group_arn": target_group_arn}],
            conditions=[{"http_header": {"http_header_name": ORIGIN_HEADER, "values": [self.origin_secret.value]}}],
            opts=child)

        self.cache_policy = None if args.cache_policy_id is not None else aws.cloudfront.CachePolicy(
            f"{name}-updates", comment="Update files: long edge cache, compressed",
            default_ttl=args.cache_ttl_seconds, max_ttl=max(args.cache_ttl_seconds, 31_536_000), min_ttl=0,
            parameters_in_cache_key_and_forwarded_to_origin={
                "cookies_config": {"cookie_behavior": "none"},
                "headers_config": {"header_behavior": "none"},
                "query_strings_config": {"query_string_behavior": "none"},
                "enable_accept_encoding_gzip": True,
                "enable_accept_encoding_brotli": True,
            },
            opts=child)
        cache_policy_id = args.cache_policy_id if self.cache_policy is None else self.cache_policy.id
        self.headers = None if args.response_headers_policy_id is not None else \
            security_headers_policy(f"{name}-headers", parent=self)
        headers_id = headers_policy_id(self.headers, args.response_headers_policy_id)
        origin_id = "update-servers"
        self.distribution = aws.cloudfront.Distribution(
            name,
            enabled=True,
            is_ipv6_enabled=True,
            comment=f"{name}: update files cached at the edge",
            price_class=defaults.CDN_PRICE_CLASS,
            origins=[{
                "origin_id": origin_id,
                "domain_name": origin_dns,
                **origin_access,
                "custom_headers": [{"name": ORIGIN_HEADER, "value": self.origin_secret.value}],
            }],
            default_cache_behavior={
                "target_origin_id": origin_id,
                "viewer_protocol_policy": defaults.CDN_VIEWER_PROTOCOL_POLICY,
                "allowed_methods": ALL_METHODS if args.forward_all_methods else READ_METHODS,
                "cached_methods": ["GET", "HEAD"],
                "cache_policy_id": CACHING_DISABLED,
                "origin_request_policy_id": ALL_VIEWER_EXCEPT_HOST,
                "response_headers_policy_id": headers_id,
                "compress": False,
            },
            ordered_cache_behaviors=[{
                "path_pattern": pattern,
                "target_origin_id": origin_id,
                "viewer_protocol_policy": defaults.CDN_VIEWER_PROTOCOL_POLICY,
                "allowed_methods": ["GET", "HEAD"],
                "cached_methods": ["GET", "HEAD"],
                "cache_policy_id": cache_policy_id,
                "response_headers_policy_id": headers_id,
                "compress": True,
            } for pattern in args.cached_paths],
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            aliases=list(args.domain_names) or None,
            viewer_certificate=defaults.viewer_certificate(args.certificate_arn),
            web_acl_id=CaseFirewalls(name, enabled=args.enable_waf, parent=self).for_distributions(),
            opts=child)
        self.logs = CaseLogs(name, enabled=args.access_logs, parent=self, keep_data=args.deletion_protection)
        self.logs.log_distribution(f"{name}-logs", self.distribution)
        self.distribution_domain = self.distribution.domain_name
        self.origin_dns_name = pulumi.Output.from_input(origin_dns)
        self.cached_path_patterns = pulumi.Output.from_input(list(args.cached_paths))
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, pulumi.Output[Any]]:
        return {"distribution_domain": self.distribution_domain, "origin_dns_name": self.origin_dns_name,
                "cached_path_patterns": self.cached_path_patterns, **self.logs.outputs()}
