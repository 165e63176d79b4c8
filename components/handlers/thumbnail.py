"""Makes a thumbnail of each uploaded image (MyBlog.com).

Triggered by ObjectCreated events under ``uploads/``, delivered by S3 directly or wrapped
in SNS messages (fan-out). Writes a JPEG that fits in ``THUMBNAIL_SIZE`` (``WxH``, default
``200x200``), keeping the aspect ratio, to ``THUMBNAIL_BUCKET`` under ``thumbnails/``.
The thumbnails bucket is a different bucket, so its writes never trigger this function
again. An object that is not an image is reported and skipped: it is never retried.

Environment: ``THUMBNAIL_BUCKET``, ``THUMBNAIL_SIZE``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import urllib.parse
from typing import Any

import boto3
from PIL import Image, UnidentifiedImageError

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
MAX_SOURCE_BYTES = 20 * 1024 * 1024
_client: Any = None


def _s3() -> Any:
    global _client
    if _client is None:
        _client = boto3.client("s3")
    return _client


def box() -> tuple[int, int]:
    width, _, height = os.environ.get("THUMBNAIL_SIZE", "200x200").partition("x")
    return int(width), int(height)


def s3_records(event: dict[str, Any]) -> list[dict[str, Any]]:
    """S3 event records, whether delivered directly or inside SNS notifications."""
    records = []
    for record in event.get("Records", []):
        if "Sns" in record:
            message = json.loads(record["Sns"].get("Message") or "{}")
            records += [r for r in message.get("Records", []) if "s3" in r]
        elif "s3" in record:
            records.append(record)
    return records


def thumbnail_key(key: str) -> str:
    stem = key.removeprefix("uploads/").rsplit(".", 1)[0]
    return f"thumbnails/{stem}.jpg"


def make_thumbnail(data: bytes, size: tuple[int, int]) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail(size)
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=85)
        return out.getvalue()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    made, skipped = [], []
    target = os.environ["THUMBNAIL_BUCKET"]
    for record in s3_records(event):
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        if bucket == target or not key.startswith("uploads/"):
            skipped.append({"key": key, "reason": "not an upload"})
            continue
        obj = _s3().get_object(Bucket=bucket, Key=key)
        if obj.get("ContentLength", 0) > MAX_SOURCE_BYTES:
            LOG.warning("skipping %s: larger than %d bytes", key, MAX_SOURCE_BYTES)
            skipped.append({"key": key, "reason": "too large"})
            continue
        try:
            thumb = make_thumbnail(obj["Body"].read(), box())
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            LOG.warning("skipping %s: not an image (%s)", key, exc)
            skipped.append({"key": key, "reason": "not an image"})
            continue
        _s3().put_object(Bucket=target, Key=thumbnail_key(key), Body=thumb, ContentType="image/jpeg")
        made.append(thumbnail_key(key))
    return {"thumbnails": made, "skipped": skipped}
