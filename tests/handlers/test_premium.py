"""Premium registration and the signed-URL generator against moto, with a real RSA key."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from typing import Any

import boto3
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.handlers.conftest import fresh

TABLE, DOMAIN, KEY_ID = "members", "d111111abcdef8.cloudfront.net", "K2JCJMDEHXQW5F"


@pytest.fixture
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def premium(aws: None, monkeypatch: pytest.MonkeyPatch, key: rsa.RSAPrivateKey) -> tuple[Any, Any]:
    boto3.client("dynamodb").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"}])
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    secret = boto3.client("secretsmanager").create_secret(
        Name="signing", SecretString=json.dumps({"key_pair_id": KEY_ID, "private_key_pem": pem}))
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("SECRET_ARN", secret["ARN"])
    monkeypatch.setenv("DISTRIBUTION_DOMAIN", DOMAIN)
    monkeypatch.setenv("URL_EXPIRY_SECONDS", "120")
    monkeypatch.setenv("ADMIN_GROUP", "premium-admins")
    signer = fresh("signed_url")
    signer._clients.clear()
    signer._signer = None
    return fresh("register_premium"), signer


def call(module: Any, sub: str, body: Any = None, groups: str = "") -> tuple[int, dict[str, Any]]:
    claims = {"sub": sub, "email": f"{sub}@example.com"}
    if groups:
        claims["cognito:groups"] = groups  # as API Gateway's Cognito authorizer passes it: text
    event = {"requestContext": {"authorizer": {"claims": claims}}, "body": json.dumps(body) if body is not None else None}
    response = module.handler(event)
    return response["statusCode"], json.loads(response["body"])


def grant(register: Any, user: str) -> tuple[int, dict[str, Any]]:
    """An administrator (a member of the premium-admins group) grants ``user`` membership."""
    return call(register, "admin-1", {"user_id": user, "email": f"{user}@example.com"}, groups="premium-admins")


def cloudfront_b64decode(text: str) -> bytes:
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


def test_registration_twice_leaves_one_record(premium: tuple[Any, Any]) -> None:
    register, _ = premium
    assert grant(register, "ada") == (201, {"premium": True, "registered": True})
    assert grant(register, "ada") == (200, {"premium": True, "registered": False})
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert len(items) == 1 and items[0]["userId"]["S"] == "ada" and items[0]["grantedBy"]["S"] == "admin-1"


@pytest.mark.parametrize("groups", ["", "authors", "premium-admins-not"])
def test_a_user_cannot_make_themselves_premium(premium: tuple[Any, Any], groups: str) -> None:
    register, signer = premium
    assert call(register, "mallory", {"user_id": "mallory"}, groups=groups)[0] == 403
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Items"] == []
    assert call(signer, "mallory", {"path": "/videos/a.mp4"})[0] == 403


@pytest.mark.parametrize("groups", ["premium-admins", "[premium-admins authors]", "authors,premium-admins"])
def test_an_administrator_is_recognised_in_every_form_the_groups_claim_takes(premium: tuple[Any, Any],
                                                                            groups: str) -> None:
    register, _ = premium
    assert call(register, "admin-1", {"user_id": "ada"}, groups=groups)[0] == 201


@pytest.mark.parametrize("body", [None, {}, {"user_id": ""}, {"user_id": 42}, ["ada"]])
def test_a_grant_without_a_user_is_a_400(premium: tuple[Any, Any], body: Any) -> None:
    register, _ = premium
    assert call(register, "admin-1", body, groups="premium-admins")[0] == 400


def test_non_premium_user_gets_403(premium: tuple[Any, Any]) -> None:
    _, signer = premium
    assert call(signer, "stranger", {"path": "/videos/a.mp4"})[0] == 403


def test_premium_user_gets_a_url_signed_for_exactly_that_path(premium: tuple[Any, Any],
                                                              key: rsa.RSAPrivateKey) -> None:
    register, signer = premium
    grant(register, "ada")
    before = int(time.time())
    status, body = call(signer, "ada", {"path": "/videos/intro.mp4"})
    assert status == 200
    url = urllib.parse.urlparse(body["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", DOMAIN, "/videos/intro.mp4")
    query = dict(urllib.parse.parse_qsl(url.query))
    assert query["Key-Pair-Id"] == KEY_ID
    expires = int(query["Expires"])
    assert before + 120 <= expires <= int(time.time()) + 121 and body["expires_at"] == expires
    policy = json.dumps({"Statement": [{"Resource": f"https://{DOMAIN}/videos/intro.mp4",
                                        "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
                        separators=(",", ":"))
    key.public_key().verify(cloudfront_b64decode(query["Signature"]), policy.encode(), padding.PKCS1v15(),
                            hashes.SHA1())  # noqa: S303 - CloudFront's signing scheme
    other = policy.replace("intro.mp4", "other.mp4")
    with pytest.raises(InvalidSignature):
        key.public_key().verify(cloudfront_b64decode(query["Signature"]), other.encode(), padding.PKCS1v15(),
                                hashes.SHA1())  # noqa: S303


@pytest.mark.parametrize("path", ["", "/", "/videos/../secret.mp4", "/videos/%2e%2e/secret.mp4",
                                  "https://evil.example/x.mp4", "//evil.example/x", "videos/a.mp4",
                                  "/a.mp4?Policy=x", None, 42])
def test_bad_paths_get_400(premium: tuple[Any, Any], path: Any) -> None:
    register, signer = premium
    grant(register, "ada")
    status, body = call(signer, "ada", {"path": path})
    assert status == 400 and "path must be" in body["error"]


def test_the_private_key_never_leaves_the_function(premium: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    register, signer = premium
    grant(register, "ada")
    _, body = call(signer, "ada", {"path": "/a.mp4"})
    assert "PRIVATE KEY" not in json.dumps(body) and "PRIVATE KEY" not in caplog.text
