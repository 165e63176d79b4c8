"""The welcome-email handler against moto: one email per new user, read back from SES."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from tests.handlers.conftest import REGION, fresh

SENDER = "welcome@myblog.example"


@pytest.fixture
def welcome(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    boto3.client("sesv2").create_email_identity(EmailIdentity=SENDER)
    monkeypatch.setenv("SENDER", SENDER)
    return fresh("welcome_email")


def sent() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def record(event_name: str, seq: str, email: str | None = "ada@example.com") -> dict[str, Any]:
    image: dict[str, Any] = {"userId": {"S": f"user-{seq}"}, "name": {"S": "Ada"}}
    if email is not None:
        image["email"] = {"S": email}
    return {"eventID": seq, "eventName": event_name, "dynamodb": {"SequenceNumber": seq, "NewImage": image}}


def test_exactly_one_email_per_insert(welcome: Any) -> None:
    result = welcome.handler({"Records": [record("INSERT", "1", "ada@example.com"),
                                          record("INSERT", "2", "alan@example.com")]})
    assert result == {"batchItemFailures": []}
    messages = sent()
    assert len(messages) == 2
    assert sorted(m.destinations["ToAddresses"][0] for m in messages) == ["ada@example.com", "alan@example.com"]
    assert all(m.source == SENDER for m in messages)
    assert "Welcome to MyBlog.com" in messages[0].subject


def test_modify_and_remove_are_ignored(welcome: Any) -> None:
    welcome.handler({"Records": [record("MODIFY", "3"), record("REMOVE", "4")]})
    assert sent() == []


def test_record_without_email_is_skipped_and_logged(welcome: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        result = welcome.handler({"Records": [record("INSERT", "5", email=None), record("INSERT", "6")]})
    assert result == {"batchItemFailures": []}
    assert len(sent()) == 1
    assert "has no email; skipped" in caplog.text


def test_unverified_sender_failure_is_reported_per_record(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDER", "nobody@unverified.example")
    handler = fresh("welcome_email")
    result = handler.handler({"Records": [record("INSERT", "7")]})
    assert result == {"batchItemFailures": [{"itemIdentifier": "7"}]}
