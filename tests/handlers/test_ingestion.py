"""The Firehose transform and the SQS -> Athena reporter, against moto."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from tests.handlers.conftest import fresh


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_transform_turns_valid_records_into_json_lines_and_flags_bad_ones() -> None:
    transform = fresh("firehose_transform")
    event = {"records": [
        {"recordId": "r1", "data": b64(b'{"device_id": "d1", "ts": "2026-01-01T00:00:00Z", "payload": "21.5"}')},
        {"recordId": "r2", "data": b64(b"not json")},
        {"recordId": "r3", "data": "%%% not base64 %%%"},
        {"recordId": "r4", "data": b64(b"[1, 2, 3]")},
        {"recordId": "r5", "data": b64(b"\xff\xfe binary")},
    ]}
    out = transform.handler(event)["records"]
    assert [r["recordId"] for r in out] == ["r1", "r2", "r3", "r4", "r5"]
    assert [r["result"] for r in out] == ["Ok", "ProcessingFailed", "ProcessingFailed", "ProcessingFailed",
                                          "ProcessingFailed"]
    line = base64.b64decode(out[0]["data"]).decode()
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {"device_id": "d1", "ts": "2026-01-01T00:00:00Z", "payload": "21.5"}
    assert [r["data"] for r in out[1:]] == [e["data"] for e in event["records"][1:]]  # kept for the error prefix


def test_transform_never_crashes_on_an_empty_or_odd_event() -> None:
    transform = fresh("firehose_transform")
    assert transform.handler({}) == {"records": []}
    assert transform.handler({"records": [{"recordId": "x"}]})["records"][0]["result"] == "ProcessingFailed"


@pytest.fixture
def reporter(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    boto3.client("s3").create_bucket(Bucket="reports")
    boto3.client("athena").create_work_group(
        Name="reports-wg", Configuration={"ResultConfiguration": {"OutputLocation": "s3://reports/results/"},
                                          "EnforceWorkGroupConfiguration": True})
    monkeypatch.setenv("WORKGROUP", "reports-wg")
    monkeypatch.setenv("DATABASE", "ingest_db")
    monkeypatch.setenv("TABLE", "messages")
    return fresh("ingest_consumer")


def s3_message(key: str) -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "ingest"}, "object": {"key": key}}}]})


def queries() -> list[dict[str, Any]]:
    athena = boto3.client("athena")
    ids = athena.list_query_executions(WorkGroup="reports-wg")["QueryExecutionIds"]
    return [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]


def test_each_new_object_starts_a_query_in_the_workgroup(reporter: Any) -> None:
    result = reporter.handler({"Records": [
        {"messageId": "m1", "body": s3_message("data/year=2026/month=01/day=01/part-1.gz")},
        {"messageId": "m2", "body": s3_message("data/year=2026/month=01/day=01/part%2B2.gz")},
    ]})
    assert result == {"batchItemFailures": []}
    started = queries()
    assert len(started) == 2
    assert {q["WorkGroup"] for q in started} == {"reports-wg"}
    assert {q["QueryExecutionContext"]["Database"] for q in started} == {"ingest_db"}
    texts = sorted(q["Query"] for q in started)
    assert "s3://ingest/data/year=2026/month=01/day=01/part+2.gz" in texts[1] or \
        "s3://ingest/data/year=2026/month=01/day=01/part+2.gz" in texts[0]


def test_s3_test_event_is_ignored(reporter: Any) -> None:
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "ingest"})
    assert reporter.handler({"Records": [{"messageId": "t", "body": test_event}]}) == {"batchItemFailures": []}
    assert queries() == []


def test_malformed_message_is_a_batch_item_failure(reporter: Any) -> None:
    result = reporter.handler({"Records": [
        {"messageId": "bad-json", "body": "{oops"},
        {"messageId": "not-s3", "body": json.dumps({"hello": "world"})},
        {"messageId": "good", "body": s3_message("data/x.gz")},
    ]})
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad-json"}, {"itemIdentifier": "not-s3"}]}
    assert len(queries()) == 1


def test_object_keys_cannot_inject_sql(reporter: Any) -> None:
    reporter.handler({"Records": [{"messageId": "m", "body": s3_message("data/x'%20OR%20'1'='1.gz")}]})
    (query,) = queries()
    assert "x'' OR ''1''=''1.gz'" in query["Query"]
