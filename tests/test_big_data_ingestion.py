"""Case big-data-ingestion under Pulumi mocks: one test per guarantee."""

from __future__ import annotations

import json

import pytest

from components import get_case
from sandbox.synthesis import ACCOUNT_ID
from tests.mocks import Recorded, as_list, build, statements


@pytest.fixture(scope="module")
def ingest() -> Recorded:
    return build("big-data-ingestion")


def test_iot_rule_reads_the_topic_into_the_encrypted_stream(ingest: Recorded) -> None:
    rule = ingest.one("aws:iot/topicRule:TopicRule").inputs
    stream = ingest.one("aws:kinesis/stream:Stream")
    assert rule["sql"] == "SELECT * FROM 'devices/+/telemetry'" and rule["enabled"] is True
    assert rule["kineses"][0]["streamName"] == stream.outputs["name"]
    assert rule["errorAction"]["sqs"]["queueUrl"] == ingest.named("big-data-ingestion-rule-errors",
                                                                   "aws:sqs/queue:Queue").id
    assert stream.inputs["encryptionType"] == "KMS"


def test_firehose_transforms_buffers_compresses_and_keeps_errors_apart(ingest: Recorded) -> None:
    delivery = ingest.one("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream").inputs
    s3 = delivery["extendedS3Configuration"]
    assert delivery["kinesisSourceConfiguration"]["kinesisStreamArn"] == ingest.one("aws:kinesis/stream:Stream").outputs["arn"]
    assert s3["bufferingInterval"] == 60 and s3["compressionFormat"] == "GZIP"
    assert s3["errorOutputPrefix"].startswith("errors/") and s3["prefix"].startswith("data/")
    (processor,) = s3["processingConfiguration"]["processors"]
    transform = ingest.named("big-data-ingestion-transform", "aws:lambda/function:Function").outputs["arn"]
    assert processor["type"] == "Lambda" and processor["parameters"][0]["parameterValue"] == f"{transform}:$LATEST"


def test_firehose_logs_errors_to_a_stream_that_exists_and_may_write_only_there(ingest: Recorded) -> None:
    logging = ingest.one("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream") \
        .inputs["extendedS3Configuration"]["cloudwatchLoggingOptions"]
    stream = ingest.one("aws:cloudwatch/logStream:LogStream")
    group = ingest.by_id(stream.inputs["logGroupName"])
    assert logging == {"enabled": True, "logGroupName": group.id, "logStreamName": stream.id}
    role_policy = next(p for p in ingest.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "big-data-ingestion-firehose")
    (logs,) = [s for s in statements(role_policy) if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    assert as_list(logs["Action"]) == ["logs:PutLogEvents"] and as_list(logs["Resource"]) == [stream.outputs["arn"]]


def test_queue_admits_only_the_ingestion_bucket_and_has_a_dead_letter_queue(ingest: Recorded) -> None:
    queue = ingest.named("big-data-ingestion-objects", "aws:sqs/queue:Queue")
    bucket = ingest.named("big-data-ingestion-ingestion", "aws:s3/bucket:Bucket")
    policy = next(p for p in ingest.of_type("aws:sqs/queuePolicy:QueuePolicy") if p.inputs["queueUrl"] == queue.id)
    (allow,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Condition"]["ArnEquals"] == {"aws:SourceArn": bucket.outputs["arn"]}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive["deadLetterTargetArn"] == ingest.named("big-data-ingestion-objects-dlq", "aws:sqs/queue:Queue").outputs["arn"]
    (notification,) = ingest.of_type("aws:s3/bucketNotification:BucketNotification")
    assert notification.inputs["queues"][0]["queueArn"] == queue.outputs["arn"]


def test_consumer_reports_partial_batch_failures(ingest: Recorded) -> None:
    mapping = ingest.one("aws:lambda/eventSourceMapping:EventSourceMapping").inputs
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["eventSourceArn"] == ingest.named("big-data-ingestion-objects", "aws:sqs/queue:Queue").outputs["arn"]


def test_workgroup_enforces_encrypted_results_and_a_scan_cutoff(ingest: Recorded) -> None:
    config = ingest.one("aws:athena/workgroup:Workgroup").inputs["configuration"]
    reporting = ingest.named("big-data-ingestion-reporting", "aws:s3/bucket:Bucket").id
    assert config["enforceWorkgroupConfiguration"] is True
    assert config["bytesScannedCutoffPerQuery"] == 1_000_000_000
    assert config["resultConfiguration"]["outputLocation"] == f"s3://{reporting}/results/"
    assert config["resultConfiguration"]["encryptionConfiguration"]["encryptionOption"] == "SSE_S3"


def test_glue_table_describes_the_ingested_data(ingest: Recorded) -> None:
    table = ingest.one("aws:glue/catalogTable:CatalogTable").inputs
    ingestion = ingest.named("big-data-ingestion-ingestion", "aws:s3/bucket:Bucket").id
    assert table["storageDescriptor"]["location"] == f"s3://{ingestion}/data/"
    assert [c["name"] for c in table["storageDescriptor"]["columns"]] == ["device_id", "ts", "payload"]


def test_each_role_reaches_only_its_own_resources(ingest: Recorded) -> None:
    stream = ingest.one("aws:kinesis/stream:Stream").outputs["arn"]
    ingestion = ingest.named("big-data-ingestion-ingestion", "aws:s3/bucket:Bucket").outputs["arn"]
    reporting = ingest.named("big-data-ingestion-reporting", "aws:s3/bucket:Bucket").outputs["arn"]
    for statement in statements(ingest.named("big-data-ingestion-iot", "aws:iam/rolePolicy:RolePolicy")):
        assert statement["Resource"][0] in (stream, ingest.named("big-data-ingestion-rule-errors",
                                                                  "aws:sqs/queue:Queue").outputs["arn"])
    firehose = {s["Sid"]: s for s in statements(ingest.named("big-data-ingestion-firehose", "aws:iam/rolePolicy:RolePolicy"))}
    assert firehose["ReadOwnStream"]["Resource"] == [stream]
    assert firehose["WriteIngestionBucket"]["Resource"] == [ingestion, f"{ingestion}/*"]
    reporter = {s["Sid"]: s for s in statements(ingest.named("big-data-ingestion-reporter-policy"))}
    assert reporter["WriteResults"]["Resource"] == [reporting, f"{reporting}/results/*"]
    assert all("*" not in as_list(s["Resource"]) for sid, s in reporter.items() if sid != "Tracing")


def test_outputs_are_the_declared_ones(ingest: Recorded) -> None:
    assert sorted(ingest.output_names) == sorted(get_case("big-data-ingestion").outputs)
