"""Account baseline: what an AWS account needs once per region before the cases that have a REST
API (todo-app, blog, premium-content, microservices) can deploy there.

API Gateway writes a stage's access and execution logs with one role per account and region (its
account settings): a stage with logging is refused (``BadRequestException: CloudWatch Logs role
ARN must be set in account settings to enable logging``) until that role is set. The setting is a
singleton of the region, so no case stack owns it: this stack does, one per account and region.
Destroying it resets the setting (the AWS provider's behaviour), after which every REST API of the
account and region stops writing logs and no new stage with logging is accepted.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components import defaults
from components.args import CaseArgs, check_args, component_args
from components.cdn import security_headers_policy

TOKEN = "serverless-cases:cases:AccountBaseline"
DESCRIPTION = (
    "Account baseline: API Gateway's CloudWatch Logs role for this account and region, set once before "
    "the cases with a REST API deploy here (todo-app, blog, premium-content, microservices); optionally one "
    "CloudFront security headers policy for the account's distributions to share."
)


@component_args
class AccountBaselineArgs(CaseArgs):
    cloudfront_security_headers: bool = False
    """Also make one CloudFront response headers policy with the cases' security headers, for the
    account's stacks to share (their ``response_headers_policy_id``; its id is the
    ``security_headers_policy_id`` output). An account holds 20 response headers policies, and
    every stack with a distribution makes one of its own unless it is given a shared one."""

    def problems(self) -> list[str]:
        return self.tag_problems()


class AccountBaseline(pulumi.ComponentResource):
    def __init__(self, name: str, args: AccountBaselineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        check_args(args, component=TOKEN)
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition_output().partition
        region = aws.get_region_output().region
        account = aws.get_caller_identity_output().account_id
        self.role = aws.iam.Role(
            f"{name}-api-gateway-logs", assume_role_policy=defaults.assume_role_policy("apigateway.amazonaws.com"),
            opts=child)
        self.policy = aws.iam.RolePolicy(
            f"{name}-api-gateway-logs", role=self.role.id,
            policy=pulumi.Output.all(partition, region, account).apply(
                lambda p: defaults.policy_document(defaults.api_gateway_logging_statements(*p))),
            opts=child)
        self.settings = aws.apigateway.Account(
            f"{name}-api-gateway", cloudwatch_role_arn=self.role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]))
        self.headers = security_headers_policy(f"{name}-security-headers", parent=self) \
            if args.cloudfront_security_headers else None
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, pulumi.Output]:
        made = {"security_headers_policy_id": self.headers.id} if self.headers is not None else {}
        return {"api_gateway_cloudwatch_role_arn": self.settings.cloudwatch_role_arn.apply(lambda arn: arn or ""),
                **made}
