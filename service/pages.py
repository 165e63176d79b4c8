"""Pages of a list endpoint: ``limit`` (default 100, at most 1000) and an opaque ``cursor`` naming
where the next page starts (the sort key of the last item shown)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Annotated, Any

from fastapi import Query

from service.errors import InvalidCursor

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]


def encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None, arity: int) -> list[Any] | None:
    """The sort key a cursor names, or None for the first page; InvalidCursor if it names none."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise InvalidCursor("cursor: not a cursor this service gave") from None
    if not isinstance(key, list) or len(key) != arity or not all(isinstance(k, str) for k in key):
        raise InvalidCursor("cursor: not a cursor of this list")
    return key


def moment(text: str) -> dt.datetime:
    """The time a cursor holds; InvalidCursor if it holds none."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidCursor("cursor: not a cursor of this list") from None
