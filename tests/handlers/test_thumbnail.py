"""The thumbnail handler against moto, on real generated images."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from PIL import Image

from tests.handlers.conftest import fresh

UPLOADS, THUMBS = "blog-uploads", "blog-thumbnails"


@pytest.fixture
def thumbnailer(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=UPLOADS)
    s3.create_bucket(Bucket=THUMBS)
    monkeypatch.setenv("THUMBNAIL_BUCKET", THUMBS)
    monkeypatch.setenv("THUMBNAIL_SIZE", "200x100")
    return fresh("thumbnail")


def image_bytes(fmt: str, size: tuple[int, int]) -> bytes:
    image = Image.new("RGBA" if fmt == "PNG" else "RGB", size, (200, 30, 30))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def s3_event(key: str, bucket: str = UPLOADS) -> dict[str, Any]:
    return {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}


def thumbnail_size(key: str) -> tuple[int, int]:
    body = boto3.client("s3").get_object(Bucket=THUMBS, Key=key)["Body"].read()
    with Image.open(io.BytesIO(body)) as thumb:
        assert thumb.format == "JPEG"
        return thumb.size


@pytest.mark.parametrize(("fmt", "source", "expected"), [
    ("JPEG", (1600, 1200), (133, 100)),   # limited by height, 4:3 kept
    ("PNG", (1000, 250), (200, 50)),      # limited by width, 4:1 kept
])
def test_thumbnail_fits_the_box_and_keeps_aspect_ratio(thumbnailer: Any, fmt: str, source: tuple[int, int],
                                                       expected: tuple[int, int]) -> None:
    key = f"uploads/author-1/photo.{fmt.lower()}"
    boto3.client("s3").put_object(Bucket=UPLOADS, Key=key, Body=image_bytes(fmt, source))
    result = thumbnailer.handler(s3_event(key))
    assert result["thumbnails"] == ["thumbnails/author-1/photo.jpg"]
    width, height = thumbnail_size("thumbnails/author-1/photo.jpg")
    assert width <= 200 and height <= 100
    assert (width, height) == expected
    assert abs(width / height - source[0] / source[1]) < 0.05


def test_events_wrapped_by_sns_fanout_are_handled(thumbnailer: Any) -> None:
    key = "uploads/a/b.png"
    boto3.client("s3").put_object(Bucket=UPLOADS, Key=key, Body=image_bytes("PNG", (400, 400)))
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(s3_event(key))}}]}
    assert thumbnailer.handler(event)["thumbnails"] == ["thumbnails/a/b.jpg"]


def test_non_image_is_reported_and_skipped_not_retried(thumbnailer: Any) -> None:
    boto3.client("s3").put_object(Bucket=UPLOADS, Key="uploads/x/notes.png", Body=b"just some text")
    result = thumbnailer.handler(s3_event("uploads/x/notes.png"))  # returns normally: no retry loop
    assert result == {"thumbnails": [], "skipped": [{"key": "uploads/x/notes.png", "reason": "not an image"}]}
    assert boto3.client("s3").list_objects_v2(Bucket=THUMBS).get("KeyCount") == 0


def test_own_output_bucket_never_triggers_work(thumbnailer: Any) -> None:
    result = thumbnailer.handler(s3_event("thumbnails/a/b.jpg", bucket=THUMBS))
    assert result["thumbnails"] == [] and result["skipped"][0]["reason"] == "not an upload"
