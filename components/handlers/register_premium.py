"""Premium registration: an administrator grants a user premium membership, once.

POST ``{"user_id": "<Cognito sub>", "email": "..."}``, Cognito-authorized, and only for callers
in the ``ADMIN_GROUP`` Cognito group (403 for everyone else: a user cannot make themselves
premium). The first grant stores ``{userId, email, since, grantedBy}`` and answers 201; later
grants change nothing and answer 200: exactly one record per user.

Environment: ``TABLE_NAME``, ``ADMIN_GROUP``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import boto3

_client: Any = None


def _db() -> Any:
    global _client
    if _client is None:
        _client = boto3.client("dynamodb")
    return _client


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims") or {}
    admin = claims.get("sub")
    if not admin:
        return _response(401, {"error": "no authenticated caller"})
    if os.environ["ADMIN_GROUP"] not in _groups(claims):
        return _response(403, {"error": "only premium administrators grant membership"})
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("user_id"), str) or not body["user_id"].strip():
        return _response(400, {"error": "the body must be JSON like {\"user_id\": \"<Cognito sub>\"}"})
    item = {"userId": {"S": body["user_id"].strip()}, "since": {"S": dt.datetime.now(dt.UTC).isoformat()},
            "grantedBy": {"S": admin}}
    if isinstance(body.get("email"), str):
        item["email"] = {"S": body["email"]}
    try:
        _db().put_item(TableName=os.environ["TABLE_NAME"], Item=item, ConditionExpression="attribute_not_exists(userId)")
    except _db().exceptions.ConditionalCheckFailedException:
        return _response(200, {"premium": True, "registered": False})
    return _response(201, {"premium": True, "registered": True})


def _groups(claims: dict[str, Any]) -> set[str]:
    """The caller's Cognito groups: API Gateway passes the ``cognito:groups`` claim as text
    (``a,b`` or ``[a b]``), a list in some integrations."""
    value = claims.get("cognito:groups") or []
    if isinstance(value, str):
        value = value.strip("[]").replace(",", " ").split()
    return {str(group) for group in value}
