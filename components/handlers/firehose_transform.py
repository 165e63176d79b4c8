"""Firehose record transformation: raw device messages -> newline-delimited JSON.

Each input record keeps its ``recordId``. A record whose data is a JSON object comes out
as one JSON line with result ``Ok``; anything else (not base64, not UTF-8, not JSON, not an
object) comes out unchanged with result ``ProcessingFailed``, so Firehose writes it under
the error prefix. The function never raises on bad data.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)


def transform(record: dict[str, Any]) -> dict[str, Any]:
    raw = record.get("data", "")
    try:
        message = json.loads(base64.b64decode(raw, validate=True).decode("utf-8"))
        if not isinstance(message, dict):
            raise ValueError("not a JSON object")
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        LOG.warning("record %s is malformed: %s", record.get("recordId"), exc)
        return {"recordId": record.get("recordId"), "result": "ProcessingFailed", "data": raw}
    line = json.dumps(message, separators=(",", ":"), sort_keys=True) + "\n"
    return {"recordId": record["recordId"], "result": "Ok", "data": base64.b64encode(line.encode()).decode()}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {"records": [transform(r) for r in event.get("records", [])]}
