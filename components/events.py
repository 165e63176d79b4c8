"""Asynchronous sources wired to functions, each with a place for failures.

- :class:`StreamSubscription`: a DynamoDB/Kinesis stream feeding a function through an event
  source mapping with optional event filters, bisect-on-error, bounded retries and record
  age, and an on-failure destination queue.
- :class:`BucketEvents`: a bucket's ObjectCreated events under a prefix, delivered to a
  function directly or, when fan-out is wanted, through an SNS topic that the function and an
  optional SQS queue subscribe to. (S3 allows one destination per event type and prefix, so
  fan-out of the *same* events needs the topic.) Topic and queue policies admit only that
  bucket of this account, and only through that topic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.args import check_args
from components.function import Function, dead_letter_queue
from components.storage import PrivateBucket

STREAM_TOKEN = "serverless-cases:events:StreamSubscription"
BUCKET_TOKEN = "serverless-cases:events:BucketEvents"


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamSubscriptionArgs:
    function: Function
    stream_arn: pulumi.Input[str]
    event_names: Sequence[str] = ()
    """Deliver only records of these event names (INSERT, MODIFY, REMOVE); empty: all."""
    batch_size: int = defaults.STREAM_BATCH_SIZE
    max_retries: int = defaults.STREAM_MAX_RETRIES
    max_record_age_seconds: int = defaults.STREAM_MAX_RECORD_AGE_SECONDS
    bisect_on_error: bool = defaults.STREAM_BISECT_ON_ERROR

    def problems(self) -> list[str]:
        problems = []
        unknown = set(self.event_names) - {"INSERT", "MODIFY", "REMOVE"}
        if unknown:
            problems.append(f"event_names: {sorted(unknown)} are not INSERT, MODIFY or REMOVE")
        if not 0 <= self.max_retries <= 10_000:
            problems.append(f"max_retries: {self.max_retries} is outside 0..10000")
        if not 60 <= self.max_record_age_seconds <= 604_800:
            problems.append(f"max_record_age_seconds: {self.max_record_age_seconds} is outside 60..604800")
        if not 1 <= self.batch_size <= 10_000:
            problems.append(f"batch_size: {self.batch_size} is outside 1..10000")
        return problems


class StreamSubscription(pulumi.ComponentResource):
    mapping: aws.lambda_.EventSourceMapping
    failures: aws.sqs.Queue

    def __init__(self, name: str, args: StreamSubscriptionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(STREAM_TOKEN, name, None, opts)
        check_args(args, component=STREAM_TOKEN)
        child = pulumi.ResourceOptions(parent=self)
        self.failures = dead_letter_queue(f"{name}-failures", parent=self)
        policy = aws.iam.RolePolicy(
            f"{name}-read", role=args.function.role.id,
            policy=pulumi.Output.all(args.stream_arn, self.failures.arn).apply(lambda p: defaults.policy_document([
                defaults.allow(["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                               [p[0]], sid="ReadOwnStream"),
                defaults.allow(["dynamodb:ListStreams"], ["*"], sid="ListStreams"),
                defaults.allow(["sqs:SendMessage"], [p[1]], sid="OnFailureDestination"),
            ])),
            opts=child)
        filters = None
        if args.event_names:
            filters = {"filters": [{"pattern": json.dumps({"eventName": sorted(args.event_names)})}]}
        self.mapping = aws.lambda_.EventSourceMapping(
            name,
            function_name=args.function.function.arn,
            event_source_arn=args.stream_arn,
            starting_position="LATEST",
            batch_size=args.batch_size,
            bisect_batch_on_function_error=args.bisect_on_error,
            maximum_retry_attempts=args.max_retries,
            maximum_record_age_in_seconds=args.max_record_age_seconds,
            function_response_types=["ReportBatchItemFailures"],
            filter_criteria=filters,
            destination_config={"on_failure": {"destination_arn": self.failures.arn}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.register_outputs({"failures_queue": self.failures.url})


@dataclasses.dataclass(frozen=True, kw_only=True)
class BucketEventsArgs:
    bucket: PrivateBucket
    function: Function
    prefix: str = ""
    topic: bool = False
    """Publish the events to an SNS topic that the function subscribes to."""
    queue: bool = False
    """Also deliver the events to an SQS queue (subscribed to the topic; implies ``topic``)."""

    def problems(self) -> list[str]:
        if self.prefix.startswith("/"):
            return [f"prefix: {self.prefix!r} must not start with '/'"]
        return []


class BucketEvents(pulumi.ComponentResource):
    topic: aws.sns.Topic | None
    queue: aws.sqs.Queue | None
    key: aws.kms.Key | None

    def __init__(self, name: str, args: BucketEventsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(BUCKET_TOKEN, name, None, opts)
        check_args(args, component=BUCKET_TOKEN)
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output().account_id
        events = ["s3:ObjectCreated:*"]
        self.topic = self.queue = self.key = None
        if args.topic or args.queue:
            region = aws.get_region_output().region
            # AWS managed keys cannot admit S3 (or SNS delivering to a queue): a key of the stack's
            # own, whose policy admits exactly those sources, encrypts the topic and the queue.
            self.key = aws.kms.Key(
                f"{name}-key", description=f"{name}: S3 event fan-out (topic and queue)", enable_key_rotation=True,
                deletion_window_in_days=defaults.KMS_DELETION_WINDOW_DAYS,
                policy=pulumi.Output.all(account, args.bucket.arn, region).apply(
                    lambda p: defaults.fanout_key_policy(account=p[0], bucket_arn=p[1],
                                                         topic_arn_pattern=f"arn:aws:sns:{p[2]}:{p[0]}:{name}-topic-*")),
                opts=child)
            self.topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=self.key.arn, opts=child)
            topic_policy = aws.sns.TopicPolicy(
                f"{name}-topic-policy", arn=self.topic.arn,
                policy=pulumi.Output.all(self.topic.arn, args.bucket.arn, account).apply(lambda p: defaults.policy_document([
                    defaults.service_principal_statement("s3.amazonaws.com", ["sns:Publish"], [p[0]], source_arn=p[1],
                                                         source_account=p[2], sid="OnlyThisBucket"),
                    defaults.tls_only_statement([p[0]]),
                ])),
                opts=child)
            permission = args.function.allow_invoke(f"{name}-from-topic", "sns.amazonaws.com", self.topic.arn)
            aws.sns.TopicSubscription(
                f"{name}-function", topic=self.topic.arn, protocol="lambda", endpoint=args.function.arn,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]))
            # S3 validates its destinations when the notification is put: their policies first.
            waits: list[pulumi.Resource] = [topic_policy]
            if args.queue:
                self.queue = aws.sqs.Queue(f"{name}-queue", kms_master_key_id=self.key.arn,
                                           kms_data_key_reuse_period_seconds=defaults.QUEUE_KMS_DATA_KEY_REUSE_SECONDS,
                                           opts=child)
                queue_policy = aws.sqs.QueuePolicy(
                    f"{name}-queue-policy", queue_url=self.queue.url,
                    policy=pulumi.Output.all(self.queue.arn, self.topic.arn, account).apply(
                        lambda p: defaults.policy_document([
                            defaults.service_principal_statement("sns.amazonaws.com", ["sqs:SendMessage"], [p[0]],
                                                                 source_arn=p[1], source_account=p[2],
                                                                 sid="OnlyThisTopic"),
                            defaults.tls_only_statement([p[0]]),
                        ])),
                    opts=child)
                aws.sns.TopicSubscription(
                    f"{name}-queue", topic=self.topic.arn, protocol="sqs", endpoint=self.queue.arn,
                    raw_message_delivery=True, opts=pulumi.ResourceOptions(parent=self, depends_on=[queue_policy]))
            target: dict[str, Any] = {"topic_arn": self.topic.arn, "events": events}
            if args.prefix:
                target["filter_prefix"] = args.prefix
            notification = {"topics": [target]}
        else:
            permission = args.function.allow_invoke(f"{name}-from-bucket", "s3.amazonaws.com", args.bucket.arn,
                                                    source_account=account)
            target = {"lambda_function_arn": args.function.arn, "events": events}
            if args.prefix:
                target["filter_prefix"] = args.prefix
            notification = {"lambda_functions": [target]}
            waits = [permission]
        self.notification = aws.s3.BucketNotification(
            f"{name}-notification", bucket=args.bucket.bucket.id, **notification,
            opts=pulumi.ResourceOptions(parent=self, depends_on=waits))
        self.register_outputs({})
