"""Function: a Lambda function with a least-privilege role built from the statements it
needs, its own log group with retention, X-Ray tracing, and a dead-letter queue or
on-failure destination when it is invoked asynchronously."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.args import check_args
from components.packaging import handler_archive

TOKEN = "serverless-cases:compute:Function"


@dataclasses.dataclass(frozen=True, kw_only=True)
class FunctionArgs:
    handler_module: str
    """Module under ``components/handlers`` holding ``handler(event, context)``."""
    statements: pulumi.Input[Sequence[Mapping[str, Any]]] = ()
    """IAM statements the function's own work needs (built with ``defaults.allow``)."""
    environment: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None
    memory_mb: int = defaults.LAMBDA_MEMORY_MB
    timeout_seconds: int = defaults.LAMBDA_TIMEOUT_SECONDS
    layers: Sequence[pulumi.Input[str]] = ()
    asynchronous: bool = False
    """Invoked asynchronously (S3, SNS...): give it a dead-letter queue and bounded retries."""
    subnet_ids: pulumi.Input[Sequence[str]] | None = None
    security_group_ids: pulumi.Input[Sequence[str]] | None = None
    tracing: bool = True
    log_retention_days: int = defaults.LOG_RETENTION_DAYS
    reserved_concurrency: int | None = None

    def problems(self) -> list[str]:
        problems = []
        if not 128 <= self.memory_mb <= 10240:
            problems.append(f"memory_mb: {self.memory_mb} is outside 128..10240")
        if not 1 <= self.timeout_seconds <= 900:
            problems.append(f"timeout_seconds: {self.timeout_seconds} is outside 1..900")
        if (self.subnet_ids is None) != (self.security_group_ids is None):
            problems.append("subnet_ids and security_group_ids go together")
        problems += defaults.log_retention_problems(self.log_retention_days)
        return problems


class Function(pulumi.ComponentResource):
    function: aws.lambda_.Function
    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup
    dead_letter_queue: aws.sqs.Queue | None
    arn: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        check_args(args, component=TOKEN)
        self.logical_name = name
        child = pulumi.ResourceOptions(parent=self)
        if not args.tracing:
            defaults.warn_weakened(name, "tracing", False, True)

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", retention_in_days=args.log_retention_days, opts=child)
        self.role = aws.iam.Role(
            f"{name}-role", assume_role_policy=defaults.assume_role_policy("lambda.amazonaws.com"), opts=child)

        self.dead_letter_queue = None
        fixed: list[pulumi.Input[Mapping[str, Any]]] = []
        if args.asynchronous:
            self.dead_letter_queue = dead_letter_queue(f"{name}-dlq", parent=self)
            fixed.append(self.dead_letter_queue.arn.apply(
                lambda arn: defaults.allow(["sqs:SendMessage"], [arn], sid="DeadLetters")))
        if args.subnet_ids is not None:
            fixed += defaults.lambda_vpc_statements()

        def policy(log_group_arn: str, own: Sequence[Mapping[str, Any]], extra: Sequence[Mapping[str, Any]]) -> str:
            return defaults.policy_document([*defaults.lambda_basic_statements(log_group_arn), *extra, *own])

        self.role_policy = aws.iam.RolePolicy(
            f"{name}-policy", role=self.role.id,
            policy=pulumi.Output.all(self.log_group.arn, args.statements, pulumi.Output.all(*fixed)).apply(
                lambda parts: policy(parts[0], parts[1], parts[2])),
            opts=child)

        self.function = aws.lambda_.Function(
            name,
            role=self.role.arn,
            runtime=defaults.LAMBDA_RUNTIME,
            architectures=[defaults.LAMBDA_ARCHITECTURE],
            handler=f"{args.handler_module}.handler",
            code=handler_archive(args.handler_module),
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            layers=list(args.layers) or None,
            environment={"variables": args.environment} if args.environment is not None else None,
            tracing_config={"mode": defaults.TRACING_MODE if args.tracing else "PassThrough"},
            logging_config={"log_format": defaults.LAMBDA_LOG_FORMAT, "log_group": self.log_group.name},
            dead_letter_config={"target_arn": self.dead_letter_queue.arn} if self.dead_letter_queue else None,
            vpc_config={"subnet_ids": args.subnet_ids, "security_group_ids": args.security_group_ids}
            if args.subnet_ids is not None else None,
            reserved_concurrent_executions=args.reserved_concurrency,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy, self.log_group]),
        )
        if args.asynchronous:
            self.invoke_config = aws.lambda_.FunctionEventInvokeConfig(
                f"{name}-async", function_name=self.function.name,
                maximum_retry_attempts=defaults.ASYNC_MAX_RETRIES,
                maximum_event_age_in_seconds=defaults.ASYNC_MAX_EVENT_AGE_SECONDS, opts=child)
        self.arn = self.function.arn
        self.name = self.function.name
        self.register_outputs({"arn": self.arn, "name": self.name})

    def allow_invoke(self, name: str, principal: str, source_arn: pulumi.Input[str],
                     source_account: pulumi.Input[str] | None = None) -> aws.lambda_.Permission:
        """Let one AWS service invoke this function, from one source only."""
        return aws.lambda_.Permission(
            name, action="lambda:InvokeFunction", function=self.function.name, principal=principal,
            source_arn=source_arn, source_account=source_account, opts=pulumi.ResourceOptions(parent=self))


def dead_letter_queue(name: str, *, parent: pulumi.Resource) -> aws.sqs.Queue:
    """An encrypted queue that keeps failed events for the maximum retention, TLS-only."""
    queue = aws.sqs.Queue(
        name, sqs_managed_sse_enabled=True, message_retention_seconds=defaults.QUEUE_MESSAGE_RETENTION_SECONDS,
        opts=pulumi.ResourceOptions(parent=parent))
    aws.sqs.QueuePolicy(
        f"{name}-policy", queue_url=queue.url,
        policy=queue.arn.apply(lambda arn: defaults.policy_document([defaults.tls_only_statement([arn])])),
        opts=pulumi.ResourceOptions(parent=parent))
    return queue
