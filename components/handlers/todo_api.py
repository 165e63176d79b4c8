"""The MyTodoList API: create, list, read, update and delete the calling user's todos.

Runs behind API Gateway (Lambda proxy integration) with a Cognito authorizer: the caller
is the ``sub`` claim the authorizer verified, and every key includes it, so a user can
only ever reach their own items (another user's todo is simply not found).

Environment: ``TABLE_NAME``; ``DAX_ENDPOINT`` to read and write through DAX when the DAX
client is packaged with the function.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
MAX_TITLE = 200
_client: Any = None
_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


def _db() -> Any:
    """The DynamoDB client, made on first use (DAX when configured and available)."""
    global _client
    if _client is None:
        endpoint = os.environ.get("DAX_ENDPOINT")
        if endpoint:
            try:
                from amazondax import AmazonDaxClient

                _client = AmazonDaxClient(endpoint_url=endpoint)
            except ImportError:
                LOG.warning("DAX_ENDPOINT set but the DAX client is not packaged; using DynamoDB directly")
        if _client is None:
            _client = boto3.client("dynamodb")
    return _client


def _response(status: int, body: Any = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "private"},
        "body": "" if body is None else json.dumps(body),
    }


class BadRequestError(Exception):
    pass


def _caller(event: dict[str, Any]) -> str | None:
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims") or {}
    sub = claims.get("sub")
    return sub if isinstance(sub, str) and sub else None


def _body(event: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    raw = event.get("body")
    if raw is None or raw == "":
        raise BadRequestError("a JSON body is required")
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        raise BadRequestError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequestError("the body must be a JSON object")
    unknown = sorted(set(data) - {"title", "done"})
    if unknown:
        raise BadRequestError(f"unknown fields: {', '.join(unknown)}")
    if not partial and "title" not in data:
        raise BadRequestError("title is required")
    if partial and not data:
        raise BadRequestError("nothing to update: give title and/or done")
    if "title" in data and (not isinstance(data["title"], str) or not 1 <= len(data["title"].strip()) <= MAX_TITLE):
        raise BadRequestError(f"title must be a string of 1 to {MAX_TITLE} characters")
    if "done" in data and not isinstance(data["done"], bool):
        raise BadRequestError("done must be true or false")
    return data


def _item(raw: dict[str, Any]) -> dict[str, Any]:
    item = {k: _deserializer.deserialize(v) for k, v in raw.items()}
    return {"todoId": item["todoId"], "title": item.get("title", ""), "done": bool(item.get("done", False))}


def _key(user: str, todo_id: str) -> dict[str, Any]:
    return {"userId": {"S": user}, "todoId": {"S": todo_id}}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    user = _caller(event)
    if user is None:
        return _response(401, {"error": "no authenticated caller"})
    table = os.environ["TABLE_NAME"]
    method = event.get("httpMethod", "")
    todo_id = (event.get("pathParameters") or {}).get("todoId")
    try:
        if todo_id is None and method == "GET":
            pages = _db().get_paginator("query").paginate(
                TableName=table, KeyConditionExpression="userId = :u", ExpressionAttributeValues={":u": {"S": user}})
            return _response(200, {"items": [_item(i) for page in pages for i in page.get("Items", [])]})
        if todo_id is None and method == "POST":
            data = _body(event, partial=False)
            item = {"userId": user, "todoId": str(uuid.uuid4()), "title": data["title"].strip(),
                    "done": data.get("done", False)}
            _db().put_item(TableName=table, Item={k: _serializer.serialize(v) for k, v in item.items()})
            return _response(201, {"todoId": item["todoId"], "title": item["title"], "done": item["done"]})
        if todo_id is not None and method == "GET":
            found = _db().get_item(TableName=table, Key=_key(user, todo_id)).get("Item")
            return _response(200, _item(found)) if found else _response(404, {"error": "todo not found"})
        if todo_id is not None and method == "PUT":
            data = _body(event, partial=True)
            names = {f"#{k}": k for k in data}
            values = {f":{k}": _serializer.serialize(v.strip() if k == "title" else v) for k, v in data.items()}
            try:
                updated = _db().update_item(
                    TableName=table, Key=_key(user, todo_id),
                    UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in data),
                    ConditionExpression="attribute_exists(todoId)",
                    ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
            except _db().exceptions.ConditionalCheckFailedException:
                return _response(404, {"error": "todo not found"})
            return _response(200, _item(updated["Attributes"]))
        if todo_id is not None and method == "DELETE":
            try:
                _db().delete_item(TableName=table, Key=_key(user, todo_id),
                                  ConditionExpression="attribute_exists(todoId)")
            except _db().exceptions.ConditionalCheckFailedException:
                return _response(404, {"error": "todo not found"})
            return _response(204)
    except BadRequestError as exc:
        return _response(400, {"error": str(exc)})
    return _response(405, {"error": f"{method} is not supported here"})
