"""Sends one welcome email per new user (MyBlog.com).

Triggered by the users table's stream (the event source mapping filters INSERT records;
this code checks again). Each new user with an ``email`` attribute gets one email from
``SENDER``; a record without an email is logged and skipped. A failure to send is
reported as a batch item failure, so only that record is retried.

Environment: ``SENDER``, ``SITE_NAME`` (default MyBlog.com).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import boto3

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
_client: Any = None


def _ses() -> Any:
    global _client
    if _client is None:
        _client = boto3.client("sesv2")
    return _client


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    site = os.environ.get("SITE_NAME", "MyBlog.com")
    failures = []
    for record in event.get("Records", []):
        if record.get("eventName") != "INSERT":
            continue
        image = (record.get("dynamodb") or {}).get("NewImage") or {}
        email = (image.get("email") or {}).get("S")
        if not email:
            LOG.warning("new user record %s has no email; skipped", record.get("eventID"))
            continue
        name = (image.get("name") or {}).get("S") or "there"
        try:
            _ses().send_email(
                FromEmailAddress=os.environ["SENDER"],
                Destination={"ToAddresses": [email]},
                Content={"Simple": {
                    "Subject": {"Data": f"Welcome to {site}"},
                    "Body": {"Text": {"Data": f"Hi {name},\n\nwelcome to {site}!\n"}},
                }},
            )
        except Exception:
            LOG.exception("sending the welcome email for %s failed", record.get("eventID"))
            failures.append({"itemIdentifier": (record.get("dynamodb") or {}).get("SequenceNumber", "")})
    return {"batchItemFailures": failures}
