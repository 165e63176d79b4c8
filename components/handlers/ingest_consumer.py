"""Reports on newly ingested objects: S3 notification -> SQS -> this function -> Athena.

For each object created under the ingestion prefix it starts an Athena query in the
configured workgroup (whose enforced settings put encrypted results in the reporting
bucket and cap the bytes scanned). ``s3:TestEvent`` messages are acknowledged and ignored.
A malformed message is reported as a batch item failure, so only it is retried (and then
dead-lettered by the queue's redrive policy).

Environment: ``WORKGROUP``, ``DATABASE``, ``TABLE``.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from typing import Any

import boto3

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
_client: Any = None


def _athena() -> Any:
    global _client
    if _client is None:
        _client = boto3.client("athena")
    return _client


def report_query(table: str, bucket: str, key: str) -> str:
    """Per-device counts for one ingested object (the object is named by ``$path``)."""
    location = f"s3://{bucket}/{key}".replace("'", "''")
    return (f'SELECT device_id, count(*) AS messages FROM "{table}" '  # noqa: S608 - values are escaped
            f"WHERE \"$path\" = '{location}' GROUP BY device_id")


def objects(message: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for record in message.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        found.append((s3["bucket"]["name"], urllib.parse.unquote_plus(s3["object"]["key"])))
    return found


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    failures = []
    started = []
    for record in event.get("Records", []):
        message_id = record.get("messageId", "")
        try:
            message = json.loads(record["body"])
            if message.get("Event") == "s3:TestEvent":
                continue
            if "Records" not in message:
                raise ValueError("not an S3 event notification")
            for bucket, key in objects(message):
                execution = _athena().start_query_execution(
                    QueryString=report_query(os.environ["TABLE"], bucket, key),
                    QueryExecutionContext={"Database": os.environ["DATABASE"]},
                    WorkGroup=os.environ["WORKGROUP"])
                started.append(execution["QueryExecutionId"])
        except (KeyError, TypeError, ValueError) as exc:
            LOG.warning("message %s is malformed: %s", message_id, exc)
            failures.append({"itemIdentifier": message_id})
    LOG.info("started %d report queries", len(started))
    return {"batchItemFailures": failures}
