"""The todo API handler against moto: each caller sees and changes only their own todos."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.handlers.conftest import fresh

TABLE = "todos"


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    boto3.client("dynamodb").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}, {"AttributeName": "todoId", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"},
                              {"AttributeName": "todoId", "AttributeType": "S"}])
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.delenv("DAX_ENDPOINT", raising=False)
    return fresh("todo_api")


def call(api: Any, sub: str | None, method: str, todo_id: str | None = None, body: Any = None) -> tuple[int, Any]:
    event: dict[str, Any] = {
        "httpMethod": method,
        "pathParameters": {"todoId": todo_id} if todo_id else None,
        "requestContext": {"authorizer": {"claims": {"sub": sub}}} if sub else {},
        "body": body if isinstance(body, str) or body is None else json.dumps(body),
    }
    response = api.handler(event)
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


def test_create_list_get_update_delete_own_todo(api: Any) -> None:
    status, created = call(api, "alice", "POST", body={"title": "  buy milk "})
    assert status == 201 and created["title"] == "buy milk" and created["done"] is False
    todo = created["todoId"]
    assert call(api, "alice", "GET") == (200, {"items": [created]})
    assert call(api, "alice", "GET", todo) == (200, created)
    status, updated = call(api, "alice", "PUT", todo, {"done": True})
    assert status == 200 and updated == {**created, "done": True}
    assert call(api, "alice", "DELETE", todo) == (204, None)
    assert call(api, "alice", "GET", todo)[0] == 404
    assert call(api, "alice", "GET") == (200, {"items": []})


def test_another_users_todo_is_not_found(api: Any) -> None:
    _, mine = call(api, "alice", "POST", body={"title": "secret plan"})
    todo = mine["todoId"]
    assert call(api, "mallory", "GET", todo)[0] == 404
    assert call(api, "mallory", "PUT", todo, {"title": "hijacked"})[0] == 404
    assert call(api, "mallory", "DELETE", todo)[0] == 404
    assert call(api, "mallory", "GET") == (200, {"items": []})
    assert call(api, "alice", "GET", todo) == (200, mine)  # untouched


@pytest.mark.parametrize(("body", "reason"), [
    (None, "a JSON body is required"),
    ("{not json", "the body is not valid JSON"),
    (["title"], "the body must be a JSON object"),
    ({}, "title is required"),
    ({"title": ""}, "title must be a string of 1 to 200 characters"),
    ({"title": "x" * 201}, "title must be a string of 1 to 200 characters"),
    ({"title": "ok", "done": "yes"}, "done must be true or false"),
    ({"title": "ok", "owner": "bob"}, "unknown fields: owner"),
])
def test_bad_body_is_a_400_with_reason(api: Any, body: Any, reason: str) -> None:
    assert call(api, "alice", "POST", body=body) == (400, {"error": reason})


def test_empty_update_is_a_400(api: Any) -> None:
    _, todo = call(api, "alice", "POST", body={"title": "t"})
    assert call(api, "alice", "PUT", todo["todoId"], {}) == (400, {"error": "nothing to update: give title and/or done"})


def test_missing_caller_is_a_401(api: Any) -> None:
    assert call(api, None, "GET")[0] == 401
