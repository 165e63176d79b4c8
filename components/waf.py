"""WebFirewall: an AWS WAF web ACL for a CloudFront distribution or an API Gateway stage, with
AWS's managed common rule set and a per-address rate limit. Optional in every case (it bills
while idle: a web ACL and its rules are charged by the month)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.args import check_args
from components.regions import provider_in

TOKEN = "serverless-cases:waf:WebFirewall"


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebFirewallArgs:
    scope: str
    """``CLOUDFRONT`` (the web ACL lives in us-east-1, whatever the stack's region) or ``REGIONAL``."""
    rate_limit: int = defaults.WAF_RATE_LIMIT
    """Requests one address may make in 5 minutes before it is blocked."""

    def problems(self) -> list[str]:
        problems = []
        if self.scope not in ("CLOUDFRONT", "REGIONAL"):
            problems.append(f"scope: {self.scope!r} is not CLOUDFRONT or REGIONAL")
        if not 10 <= self.rate_limit <= 2_000_000_000:
            problems.append(f"rate_limit: {self.rate_limit} is outside 10..2000000000")
        return problems


def _visibility(metric: str) -> dict[str, Any]:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


class WebFirewall(pulumi.ComponentResource):
    acl: aws.wafv2.WebAcl
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: WebFirewallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        check_args(args, component=TOKEN)
        provider = None
        if args.scope == "CLOUDFRONT":  # CloudFront's web ACLs are global, managed in us-east-1
            provider = provider_in("us-east-1", f"{name}-us-east-1", parent=self)
        self.acl = aws.wafv2.WebAcl(
            name, scope=args.scope, description=f"{name}: AWS managed common rules and a rate limit",
            default_action={"allow": {}},
            rules=[
                {"name": "aws-common-rules", "priority": 0, "override_action": {"none": {}},
                 "statement": {"managed_rule_group_statement": {"vendor_name": "AWS",
                                                               "name": defaults.WAF_MANAGED_RULE_GROUP}},
                 "visibility_config": _visibility(f"{name}-common")},
                {"name": "rate-limit-per-address", "priority": 1, "action": {"block": {}},
                 "statement": {"rate_based_statement": {"limit": args.rate_limit, "aggregate_key_type": "IP"}},
                 "visibility_config": _visibility(f"{name}-rate")},
            ],
            visibility_config=_visibility(name),
            opts=pulumi.ResourceOptions(parent=self, provider=provider))
        self.arn = self.acl.arn
        self.register_outputs({"arn": self.arn})

    def protect_stage(self, name: str, stage_arn: pulumi.Input[str]) -> aws.wafv2.WebAclAssociation:
        """Put a regional API Gateway stage behind this web ACL."""
        return aws.wafv2.WebAclAssociation(name, resource_arn=stage_arn, web_acl_arn=self.arn,
                                           opts=pulumi.ResourceOptions(parent=self))


class CaseFirewalls:
    """A case's web ACLs when it asked for WAF, none otherwise: one for its distributions
    (``CLOUDFRONT``) and one for its API stages (``REGIONAL``), each made on first use."""

    def __init__(self, name: str, *, enabled: bool, parent: pulumi.Resource) -> None:
        self.name, self.enabled, self.parent = name, enabled, parent
        self._made: dict[str, WebFirewall] = {}

    def _firewall(self, scope: str) -> WebFirewall | None:
        if not self.enabled:
            return None
        if scope not in self._made:
            suffix = "edge-waf" if scope == "CLOUDFRONT" else "api-waf"
            self._made[scope] = WebFirewall(f"{self.name}-{suffix}", WebFirewallArgs(scope=scope),
                                            opts=pulumi.ResourceOptions(parent=self.parent))
        return self._made[scope]

    def for_distributions(self) -> pulumi.Output[str] | None:
        """The web ACL ARN a distribution takes (its ``web_acl_id``), or None."""
        firewall = self._firewall("CLOUDFRONT")
        return firewall.arn if firewall is not None else None

    def for_api_stages(self) -> WebFirewall | None:
        return self._firewall("REGIONAL")
