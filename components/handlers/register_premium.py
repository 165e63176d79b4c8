"""Premium registration: records the calling user as a premium member, once.

POST, Cognito-authorized. The first call stores ``{userId, email, since}`` and answers 201;
later calls change nothing and answer 200: exactly one record per user.

Environment: ``TABLE_NAME``.
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
    user = claims.get("sub")
    if not user:
        return _response(401, {"error": "no authenticated caller"})
    item = {"userId": {"S": user}, "since": {"S": dt.datetime.now(dt.UTC).isoformat()}}
    if claims.get("email"):
        item["email"] = {"S": claims["email"]}
    try:
        _db().put_item(TableName=os.environ["TABLE_NAME"], Item=item, ConditionExpression="attribute_not_exists(userId)")
    except _db().exceptions.ConditionalCheckFailedException:
        return _response(200, {"premium": True, "registered": False})
    return _response(201, {"premium": True, "registered": True})
