"""Case big-data-ingestion: IoT Core -> Kinesis Data Streams -> Firehose (Lambda transform)
-> S3 -> S3 notification -> SQS -> Lambda -> Athena -> reporting bucket.

Each role reaches only its own stream, delivery stream, buckets and queue. The Athena
workgroup enforces its configuration: results encrypted into the reporting bucket, with a
bytes-scanned cutoff per query. A Glue database and table describe the ingested data.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults, regions
from components.access_logs import CaseLogs
from components.args import CaseArgs, check_args, component_args
from components.function import Function, FunctionArgs, dead_letter_queue
from components.naming import physical_name
from components.storage import PrivateBucket, PrivateBucketArgs

TOKEN = "serverless-cases:cases:BigDataIngestion"
DELIVERY_LOG_STREAM = "delivery-errors"
DESCRIPTION = (
    "Big data ingestion: IoT Core -> Kinesis Data Streams -> Firehose with a Lambda transform -> S3 -> "
    "S3 notification -> SQS -> Lambda -> Athena -> reporting bucket (for QuickSight or Redshift)."
)
DATA_PREFIX = "data/"
_TOPIC = re.compile(r"[A-Za-z0-9_/+#-]{1,256}")


@component_args
class BigDataIngestionArgs(CaseArgs):
    topic: str = "devices/+/telemetry"
    """The MQTT topic filter the IoT rule reads."""
    buffer_seconds: int = 60
    buffer_megabytes: int = 5
    bytes_scanned_cutoff: int = 1_000_000_000
    """Athena stops a query that would scan more than this many bytes."""
    retention_hours: int = 24

    def problems(self) -> list[str]:
        problems = self.tag_problems()
        if not _TOPIC.fullmatch(self.topic) or "'" in self.topic:
            problems.append(f"topic: {self.topic!r} is not an MQTT topic filter")
        if not 0 <= self.buffer_seconds <= 900:
            problems.append(f"buffer_seconds: {self.buffer_seconds} is outside 0..900")
        if not 1 <= self.buffer_megabytes <= 128:
            problems.append(f"buffer_megabytes: {self.buffer_megabytes} is outside 1..128")
        if self.bytes_scanned_cutoff < 10_000_000:
            problems.append(f"bytes_scanned_cutoff: {self.bytes_scanned_cutoff} is below Athena's minimum of 10 MB")
        if not 24 <= self.retention_hours <= 8760:
            problems.append(f"retention_hours: {self.retention_hours} is outside 24..8760")
        return problems


def _service_role(name: str, service: str, account: pulumi.Output[str], parent: pulumi.Resource) -> aws.iam.Role:
    return aws.iam.Role(name, assume_role_policy=account.apply(
        lambda acct: defaults.assume_role_policy(service, source_account=acct)), opts=pulumi.ResourceOptions(parent=parent))


class BigDataIngestion(pulumi.ComponentResource):
    def __init__(self, name: str, args: BigDataIngestionArgs | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        args = args or BigDataIngestionArgs()
        check_args(args, component=TOKEN)
        regions.require_service(TOKEN, "iot", "IoT Core", "the devices' messages arrive through its topic rule")
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output().account_id

        # IoT Core -> Kinesis.
        self.stream = aws.kinesis.Stream(
            f"{name}-stream", stream_mode_details={"stream_mode": "ON_DEMAND"}, encryption_type="KMS",
            kms_key_id="alias/aws/kinesis", retention_period=args.retention_hours, opts=child)
        self.rule_errors = dead_letter_queue(f"{name}-rule-errors", parent=self)
        iot_role = _service_role(f"{name}-iot", "iot.amazonaws.com", account, self)
        aws.iam.RolePolicy(f"{name}-iot", role=iot_role.id, policy=pulumi.Output.all(
            self.stream.arn, self.rule_errors.arn).apply(lambda p: defaults.policy_document([
                defaults.allow(["kinesis:PutRecord", "kinesis:PutRecords"], [p[0]], sid="OwnStream"),
                defaults.allow(["sqs:SendMessage"], [p[1]], sid="RuleErrors")])), opts=child)
        self.topic_rule = aws.iot.TopicRule(
            f"{name}-rule", name=physical_name(name, max_length=128).replace("-", "_"), enabled=True,
            sql=f"SELECT * FROM '{args.topic}'",  # noqa: S608 - the topic is validated (no quotes)
            sql_version="2016-03-23",
            kineses=[{"stream_name": self.stream.name, "role_arn": iot_role.arn, "partition_key": "${newuuid()}"}],
            error_action={"sqs": {"queue_url": self.rule_errors.url, "role_arn": iot_role.arn, "use_base64": False}},
            opts=child)

        # Kinesis -> Firehose (transform) -> ingestion bucket.
        self.logs = CaseLogs(name, enabled=args.access_logs, parent=self, keep_data=args.deletion_protection)
        erasable = not args.deletion_protection
        self.ingestion = PrivateBucket(f"{name}-ingestion", PrivateBucketArgs(
            access_logs=self.logs.sink(), force_destroy=erasable), opts=child)
        self.reporting = PrivateBucket(f"{name}-reporting", PrivateBucketArgs(
            access_logs=self.logs.sink(), force_destroy=erasable), opts=child)
        self.transform = Function(
            f"{name}-transform", FunctionArgs(handler_module="firehose_transform", timeout_seconds=60), opts=child)
        delivery_logs = aws.cloudwatch.LogGroup(f"{name}-delivery-logs", retention_in_days=defaults.LOG_RETENTION_DAYS,
                                                opts=child)
        # Firehose writes its delivery errors to a stream it does not create itself.
        delivery_log_stream = aws.cloudwatch.LogStream(
            f"{name}-delivery-errors", name=DELIVERY_LOG_STREAM, log_group_name=delivery_logs.name, opts=child)
        firehose_role = _service_role(f"{name}-firehose", "firehose.amazonaws.com", account, self)
        firehose_policy = aws.iam.RolePolicy(
            f"{name}-firehose", role=firehose_role.id,
            policy=pulumi.Output.all(self.stream.arn, self.ingestion.arn, self.transform.arn,
                                     delivery_log_stream.arn).apply(
                lambda p: defaults.policy_document([
                    defaults.allow(["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetShardIterator",
                                    "kinesis:GetRecords", "kinesis:ListShards"], [p[0]], sid="ReadOwnStream"),
                    defaults.allow(["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket",
                                    "s3:ListBucketMultipartUploads", "s3:PutObject"], [p[1], f"{p[1]}/*"],
                                   sid="WriteIngestionBucket"),
                    defaults.allow(["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"], [p[2], f"{p[2]}:*"],
                                   sid="Transform"),
                    defaults.allow(["logs:PutLogEvents"], [p[3]], sid="DeliveryErrorLog"),
                ])),
            opts=child)
        self.delivery = aws.kinesis.FirehoseDeliveryStream(
            f"{name}-delivery",
            destination="extended_s3",
            kinesis_source_configuration={"kinesis_stream_arn": self.stream.arn, "role_arn": firehose_role.arn},
            extended_s3_configuration={
                "role_arn": firehose_role.arn,
                "bucket_arn": self.ingestion.arn,
                "prefix": f"{DATA_PREFIX}year=!{{timestamp:yyyy}}/month=!{{timestamp:MM}}/day=!{{timestamp:dd}}/",
                "error_output_prefix": "errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/",
                "buffering_interval": args.buffer_seconds,
                "buffering_size": args.buffer_megabytes,
                "compression_format": "GZIP",
                "processing_configuration": {"enabled": True, "processors": [{
                    "type": "Lambda",
                    "parameters": [{"parameter_name": "LambdaArn",
                                    "parameter_value": self.transform.arn.apply(lambda a: f"{a}:$LATEST")}],
                }]},
                "cloudwatch_logging_options": {"enabled": True, "log_group_name": delivery_logs.name,
                                               "log_stream_name": delivery_log_stream.name},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[firehose_policy]))

        # Ingestion bucket -> SQS (with a dead-letter queue) -> reporting function.
        self.dead_letters = dead_letter_queue(f"{name}-objects-dlq", parent=self)
        self.queue = aws.sqs.Queue(
            f"{name}-objects", sqs_managed_sse_enabled=True, visibility_timeout_seconds=6 * 60,
            redrive_policy=self.dead_letters.arn.apply(lambda arn: json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": 5})), opts=child)
        queue_policy = aws.sqs.QueuePolicy(
            f"{name}-objects", queue_url=self.queue.url,
            policy=pulumi.Output.all(self.queue.arn, self.ingestion.arn, account).apply(
                lambda p: defaults.policy_document([
                    defaults.service_principal_statement("s3.amazonaws.com", ["sqs:SendMessage"], [p[0]],
                                                         source_arn=p[1], source_account=p[2], sid="OnlyThisBucket"),
                    defaults.tls_only_statement([p[0]])])),
            opts=child)
        aws.s3.BucketNotification(
            f"{name}-new-objects", bucket=self.ingestion.bucket.id,
            queues=[{"queue_arn": self.queue.arn, "events": ["s3:ObjectCreated:*"], "filter_prefix": DATA_PREFIX}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[queue_policy]))

        # Glue catalogue and Athena.
        database_name = physical_name(f"{name}-db", max_length=64).replace("-", "_")
        self.database = aws.glue.CatalogDatabase(f"{name}-db", name=database_name, opts=child)
        self.table = aws.glue.CatalogTable(
            f"{name}-messages", name="messages", database_name=self.database.name, table_type="EXTERNAL_TABLE",
            parameters={"classification": "json", "compressionType": "gzip", "EXTERNAL": "TRUE"},
            storage_descriptor={
                "location": self.ingestion.name.apply(lambda b: f"s3://{b}/{DATA_PREFIX}"),
                "input_format": "org.apache.hadoop.mapred.TextInputFormat",
                "output_format": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "ser_de_info": {"serialization_library": "org.openx.data.jsonserde.JsonSerDe"},
                "columns": [{"name": "device_id", "type": "string"}, {"name": "ts", "type": "string"},
                            {"name": "payload", "type": "string"}],
            },
            opts=child)
        self.workgroup = aws.athena.Workgroup(
            f"{name}-reports", force_destroy=True,
            configuration={
                "enforce_workgroup_configuration": True,
                "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": args.bytes_scanned_cutoff,
                "result_configuration": {
                    "output_location": self.reporting.name.apply(lambda b: f"s3://{b}/results/"),
                    "encryption_configuration": {"encryption_option": "SSE_S3"},
                },
            },
            opts=child)
        self.consumer = Function(
            f"{name}-reporter",
            FunctionArgs(
                handler_module="ingest_consumer", timeout_seconds=60,
                environment={"WORKGROUP": self.workgroup.name, "DATABASE": self.database.name, "TABLE": self.table.name},
                statements=pulumi.Output.all(self.queue.arn, self.workgroup.arn, self.ingestion.arn, self.reporting.arn,
                                             account, self.database.name, self.table.name).apply(
                    lambda p: self._reporter_statements(*p)),
            ),
            opts=child)
        aws.lambda_.EventSourceMapping(
            f"{name}-objects", function_name=self.consumer.function.arn, event_source_arn=self.queue.arn,
            batch_size=10, function_response_types=["ReportBatchItemFailures"], opts=child)
        self.register_outputs(self.outputs())

    @staticmethod
    def _reporter_statements(queue: str, workgroup: str, ingestion: str, reporting: str, account: str,
                             database: str, table: str) -> list[dict[str, Any]]:
        region = workgroup.split(":")[3]
        catalog = f"arn:aws:glue:{region}:{account}"
        return [
            defaults.allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], [queue],
                           sid="OwnQueue"),
            defaults.allow(["athena:StartQueryExecution", "athena:GetQueryExecution"], [workgroup], sid="OwnWorkgroup"),
            defaults.allow(["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                           [f"{catalog}:catalog", f"{catalog}:database/{database}", f"{catalog}:table/{database}/{table}"],
                           sid="OwnCatalogTable"),
            defaults.allow(["s3:GetObject", "s3:ListBucket"], [ingestion, f"{ingestion}/{DATA_PREFIX}*"],
                           sid="ReadIngested"),
            defaults.allow(["s3:PutObject", "s3:GetObject", "s3:GetBucketLocation", "s3:ListBucket",
                            "s3:AbortMultipartUpload"], [reporting, f"{reporting}/results/*"], sid="WriteResults"),
        ]

    def outputs(self) -> dict[str, pulumi.Output[Any]]:
        return {
            "iot_topic": pulumi.Output.from_input(self.topic_rule.sql).apply(lambda sql: sql.split("'")[1]),
            "stream_name": self.stream.name,
            "delivery_stream_name": self.delivery.name,
            "ingestion_bucket": self.ingestion.name,
            "reporting_bucket": self.reporting.name,
            "queue_url": self.queue.url,
            "workgroup_name": self.workgroup.name,
            **self.logs.outputs(),
        }
