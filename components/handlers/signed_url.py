"""CloudFront signed-URL generator, for premium users only.

POST body ``{"path": "/videos/intro.mp4"}``. The caller must be in the premium table (403
otherwise). The answer is a CloudFront signed URL (canned policy) for exactly that path on
the distribution, valid ``URL_EXPIRY_SECONDS``. CloudFront signed URLs, not S3 pre-signed
URLs: they work at every edge location and the bucket stays private.

The signing key (``{"key_pair_id", "private_key_pem"}``) is read from Secrets Manager once
per execution environment; it is never logged or returned.

Environment: ``TABLE_NAME``, ``SECRET_ARN``, ``DISTRIBUTION_DOMAIN``, ``URL_EXPIRY_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import urllib.parse
from typing import Any

import boto3
from botocore.signers import CloudFrontSigner

_clients: dict[str, Any] = {}
_signer: CloudFrontSigner | None = None
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")


def _aws(service: str) -> Any:
    if service not in _clients:
        _clients[service] = boto3.client(service)
    return _clients[service]


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
            "body": json.dumps(body)}


def signer() -> CloudFrontSigner:
    global _signer
    if _signer is None:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        secret = json.loads(_aws("secretsmanager").get_secret_value(SecretId=os.environ["SECRET_ARN"])["SecretString"])
        key = serialization.load_pem_private_key(secret["private_key_pem"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("the CloudFront signing key must be an RSA key")

        def rsa_sign(message: bytes) -> bytes:
            return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - CloudFront's scheme

        _signer = CloudFrontSigner(secret["key_pair_id"], rsa_sign)
    return _signer


def content_path(raw: Any) -> str | None:
    """The requested path if it is a plain absolute path on the distribution, else None."""
    if not isinstance(raw, str) or not raw or len(raw) > 1024:
        return None
    decoded = urllib.parse.unquote(raw)
    if "://" in raw or raw.startswith("//") or "?" in raw or "#" in raw:
        return None
    if ".." in decoded.split("/") or "\\" in decoded or any(ord(c) < 32 for c in decoded):
        return None
    return raw if _SAFE_PATH.fullmatch(raw) and raw != "/" else None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims") or {}
    user = claims.get("sub")
    if not user:
        return _response(401, {"error": "no authenticated caller"})
    try:
        body = json.loads(event.get("body") or "{}")
    except ValueError:
        return _response(400, {"error": "the body must be JSON like {\"path\": \"/videos/intro.mp4\"}"})
    path = content_path(body.get("path") if isinstance(body, dict) else None)
    if path is None:
        return _response(400, {"error": "path must be a non-empty absolute path on the distribution, "
                                        "without '..', a scheme, a query or a fragment"})
    member = _aws("dynamodb").get_item(TableName=os.environ["TABLE_NAME"], Key={"userId": {"S": user}})
    if "Item" not in member:
        return _response(403, {"error": "premium content needs a premium membership"})
    expiry = int(os.environ.get("URL_EXPIRY_SECONDS", "300"))
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expiry)
    url = signer().generate_presigned_url(f"https://{os.environ['DISTRIBUTION_DOMAIN']}{path}", date_less_than=expires)
    return _response(200, {"url": url, "expires_at": int(expires.timestamp())})
