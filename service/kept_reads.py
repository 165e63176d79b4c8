"""The two reads clients poll most (one stack, a page of the tenant's stacks), answered ahead of
the framework.

Profiled with 32 concurrent readers, FastAPI's routing and dependency solving took three
quarters of such a read's CPU, the answer itself almost none. A request answered here is one
the route would answer with the same view (``StackViews``) and the same JSON: a GET with a
remembered token, a valid stack name or plain page parameters, on a node that owns its database
(SQLite). A kept answer is sent as it is; one not kept (after a change, every reader misses at
once) is read in the thread pool, as the route reads it, once for all the readers that miss it
together (``SharedReads``). Every other request goes on to the
route, which stays the definition of the endpoint: its validation, its errors (a stack not
found, a database that fails), its documentation.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
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


class SharedReads:
    """One read in the thread pool for all the requests that miss the same answer at once.

    After a change every reader of a busy stack or page misses together; each reading it anew
    would cost one query and one rendering per reader. A request joins a read in flight only if
    that read was asked for under the change count the request sees now, so it was asked after
    every change committed before the request arrived, and its answer shows them all."""

    def __init__(self) -> None:
        self._flying: dict[tuple[str, tuple[int, ...]], asyncio.Future[Any]] = {}

    async def read(self, key: str, version: tuple[int, ...], view: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> Any:
        flight = (key, version)
        future = self._flying.get(flight)
        if future is None:
            future = asyncio.ensure_future(_read(view, *args, **kwargs))
            self._flying[flight] = future
            future.add_done_callback(lambda _: self._flying.pop(flight, None))
        return await asyncio.shield(future)  # a reader that leaves does not end the others' read


class KeptReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.shared = SharedReads()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._answer(scope) if scope["type"] == "http" and scope["method"] == "GET" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode()), *_HEADERS]})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope) -> bytes | None:
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
            name = one.group(1)
            key = views.one_key(tenant, name)
            known, body = views.kept(key)
            if not known:
                body = await self.shared.read(key, views.version(), views.one, tenant, name)
            return cast(bytes | None, body)  # a stack not found: the route says so
        return await _page(scope, views, tenant, self.shared)


async def _read(view: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``view(...)`` in the thread pool, as the route calls it; None if it fails (the route then
    reads again and answers with its own error)."""
    try:
        return await run_in_threadpool(view, *args, **kwargs)
    except Exception:  # the route reads again and reports it
        return None


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


async def _page(scope: Scope, views: StackViews, tenant: str, shared: SharedReads) -> bytes | None:
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
    start, case, status = after[0] if after else None, params.get("case"), params.get("status")
    key = views.page_key(tenant, int(limit), start, case, status)
    known, page = views.kept(key)
    if not known:
        page = await shared.read(key, views.version(), views.page, tenant, limit=int(limit), after=start, case=case,
                                 status=status)
    return page_json(*page) if page is not None else None
