"""The pre-signed upload handler against a moto server: the URL really accepts the bytes."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import boto3
import httpx
import pytest

from tests.handlers.conftest import fresh

BUCKET = "blog-uploads"


@pytest.fixture
def presign(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("UPLOAD_BUCKET", BUCKET)
    monkeypatch.setenv("URL_EXPIRY_SECONDS", "120")
    monkeypatch.setenv("USE_ACCELERATE", "false")
    monkeypatch.setenv("AUTHOR_GROUP", "authors")
    s3 = boto3.client("s3")
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    return fresh("presign_upload")


def ask(handler: Any, body: Any, sub: str | None = "author-1", groups: str = "authors") -> tuple[int, dict[str, Any]]:
    claims = {"sub": sub, "cognito:groups": groups}
    event = {"body": json.dumps(body), "requestContext": {"authorizer": {"claims": claims}} if sub else {}}
    response = handler.handler(event)
    return response["statusCode"], json.loads(response["body"])


def test_put_of_real_bytes_to_the_url_succeeds(presign: Any) -> None:
    status, grant = ask(presign, {"content_type": "image/png"})
    assert status == 200
    payload = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    put = httpx.put(grant["url"], content=payload, headers=grant["headers"], timeout=10)
    assert put.status_code == 200
    stored = boto3.client("s3").get_object(Bucket=BUCKET, Key=grant["key"])
    assert stored["Body"].read() == payload
    assert stored["ContentType"] == "image/png"


def test_key_is_under_uploads_for_the_caller(presign: Any) -> None:
    _, grant = ask(presign, {"content_type": "image/jpeg", "filename": "../../etc/passwd"})
    assert grant["key"].startswith("uploads/author-1/") and grant["key"].endswith(".jpg")
    assert ".." not in grant["key"]


def test_expiry_is_the_configured_one(presign: Any) -> None:
    before = int(time.time())
    _, grant = ask(presign, {"content_type": "image/webp"})
    query = urllib.parse.parse_qs(urllib.parse.urlparse(grant["url"]).query)
    assert grant["expires_in"] == 120
    assert query["X-Amz-Expires"] == ["120"]
    signed_at = time.mktime(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")) - time.timezone
    assert before - 1 <= signed_at <= time.time() + 1


@pytest.mark.parametrize("content_type", ["text/html", "application/octet-stream", "image/svg+xml", None])
def test_non_image_content_type_is_a_400(presign: Any, content_type: Any) -> None:
    status, body = ask(presign, {"content_type": content_type})
    assert status == 400 and "content_type must be one of" in body["error"]


def test_url_is_signed_for_the_declared_content_type(presign: Any) -> None:
    # The signature covers Content-Type, so S3 refuses a PUT of another type (moto does not
    # check signatures, so this checks what was signed).
    _, grant = ask(presign, {"content_type": "image/png"})
    query = urllib.parse.parse_qs(urllib.parse.urlparse(grant["url"]).query)
    assert "content-type" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


@pytest.mark.parametrize("groups", ["", "readers", "[readers]"])
def test_only_authors_get_an_upload_url(presign: Any, groups: str) -> None:
    status, body = ask(presign, {"content_type": "image/png"}, groups=groups)
    assert status == 403 and "url" not in body
