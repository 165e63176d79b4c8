"""Hands out pre-signed S3 PUT URLs for image uploads (MyBlog.com thumbnails).

POST body: ``{"content_type": "image/png", "filename": "cat.png"}`` (filename optional).
The key is always ``uploads/<caller sub>/<uuid>.<ext>``, the URL expires after
``URL_EXPIRY_SECONDS`` and is signed for exactly that content type. Only image types are
accepted. With ``USE_ACCELERATE=true`` the URL uses S3 Transfer Acceleration. Only callers in
the ``AUTHOR_GROUP`` Cognito group get a URL (403 for any other signed-in user).

Environment: ``UPLOAD_BUCKET``, ``URL_EXPIRY_SECONDS`` (default 300), ``USE_ACCELERATE``, ``AUTHOR_GROUP``.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import boto3
from botocore.config import Config

IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
PREFIX = "uploads/"
_client: Any = None


def _s3() -> Any:
    global _client
    if _client is None:
        accelerate = os.environ.get("USE_ACCELERATE", "false").lower() == "true"
        _client = boto3.client("s3", config=Config(signature_version="s3v4",
                                                   s3={"use_accelerate_endpoint": accelerate}))
    return _client


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
            "body": json.dumps(body)}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims") or {}
    caller = claims.get("sub")
    if not caller:
        return _response(401, {"error": "no authenticated caller"})
    if os.environ["AUTHOR_GROUP"] not in _groups(claims):
        return _response(403, {"error": "only authors upload images"})
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        return _response(400, {"error": "the body must be JSON like {\"content_type\": \"image/png\"}"})
    if not isinstance(body, dict):
        return _response(400, {"error": "the body must be a JSON object"})
    content_type = body.get("content_type")
    if content_type not in IMAGE_TYPES:
        return _response(400, {"error": f"content_type must be one of {sorted(IMAGE_TYPES)}"})
    expiry = int(os.environ.get("URL_EXPIRY_SECONDS", "300"))
    key = f"{PREFIX}{caller}/{uuid.uuid4()}.{IMAGE_TYPES[content_type]}"
    url = _s3().generate_presigned_url(
        "put_object",
        Params={"Bucket": os.environ["UPLOAD_BUCKET"], "Key": key, "ContentType": content_type},
        ExpiresIn=expiry, HttpMethod="PUT")
    return _response(200, {"url": url, "key": key, "expires_in": expiry, "headers": {"Content-Type": content_type}})


def _groups(claims: dict[str, Any]) -> set[str]:
    """The caller's Cognito groups: API Gateway passes the ``cognito:groups`` claim as text
    (``a,b`` or ``[a b]``), a list in some integrations."""
    value = claims.get("cognito:groups") or []
    if isinstance(value, str):
        value = value.strip("[]").replace(",", " ").split()
    return {str(group) for group in value}
