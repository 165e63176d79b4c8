"""The two reads clients poll most (one stack, a page of the tenant's stacks), answered ahead of
the framework when their answer is kept.

Profiled with 32 concurrent readers, FastAPI's routing and dependency solving took three
quarters of such a read's CPU, the kept answer itself almost none. A request answered here is
one the route would answer with that same kept answer: a GET with a remembered token, a valid
stack name or plain page parameters, and a current kept answer on a node that owns its
database (SQLite). Every other request goes on to the route, which stays the definition of
the endpoint: its validation, its errors, its documentation.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from service import pages
from service.auth import Principals, bearer_token
from service.errors import InvalidCursor
from service.schemas import STACK_NAME
from service.views import StackViews, page_json

_ONE = re.compile(r"/v1/stacks/(" + STACK_NAME.strip("^$") + ")")
_LIMIT = re.compile(r"[1-9][0-9]{0,3}")
_PAGE_PARAMS = {"limit": 4, "cursor": 512, "case": 64, "status": 32}  # and the longest value the route takes
_HEADERS = [(b"content-type", b"application/json")]


class KeptReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._kept(scope) if scope["type"] == "http" and scope["method"] == "GET" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode()), *_HEADERS]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _kept(scope: Scope) -> bytes | None:
        state = scope["app"].state
        views: StackViews | None = getattr(state, "views", None)
        principals: Principals | None = getattr(state, "principals", None)
        if views is None or principals is None or views.db.shared:  # a fleet's node asks the database, off the event loop
            return None
        path = scope["path"]
        one = _ONE.fullmatch(path)
        if one is None and path != "/v1/stacks":
            return None
        headers = scope["headers"]
        if any(k in (b"content-length", b"transfer-encoding") for k, _ in headers):  # a body: the route's limits
            return None
        tenant = _tenant(headers, principals)
        if tenant is None:
            return None
        if one is not None:
            if scope["query_string"]:
                return None
            known, body = views.kept(views.one_key(tenant, one.group(1)))
            return body if known else None  # a stack not kept, or not found: the route says so
        return _page(scope, views, tenant)


def _tenant(headers: list[tuple[bytes, bytes]], principals: Principals) -> str | None:
    """The tenant of a bearer token the service remembers as valid (any other: the route decides)."""
    authorization = [v for k, v in headers if k == b"authorization"]
    if len(authorization) != 1:
        return None
    token = bearer_token(authorization[0].decode("latin-1"))
    if token is None:
        return None
    known, principal = principals.remembered(token)
    return principal.tenant if known and principal is not None else None


def _page(scope: Scope, views: StackViews, tenant: str) -> bytes | None:
    pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    params: dict[str, Any] = dict(pairs)
    if len(params) != len(pairs) or any(k not in _PAGE_PARAMS or not v or len(v) > _PAGE_PARAMS[k]
                                        for k, v in params.items()):
        return None
    limit = params.get("limit", str(pages.DEFAULT_LIMIT))
    if not _LIMIT.fullmatch(limit) or int(limit) > pages.MAX_LIMIT:
        return None
    try:
        after = pages.decode(params.get("cursor"), 1)
    except InvalidCursor:
        return None
    known, kept = views.kept(views.page_key(tenant, int(limit), after[0] if after else None, params.get("case"),
                                            params.get("status")))
    return page_json(*kept) if known else None
