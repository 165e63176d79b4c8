"""Dependencies shared by the routers, as ``Annotated`` aliases.

They are ``async``: none of them blocks, and FastAPI would run a plain function on its
thread pool, a thread hand-off per dependency per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from service.auth import Principal, Principals, bearer_token
from service.db import Database
from service.errors import Forbidden, Unauthorized
from service.runner import Runner
from service.settings import Settings
from service.views import RunViews, StackViews


async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_runner(request: Request) -> Runner:
    return request.app.state.runner


async def get_views(request: Request) -> StackViews:
    return request.app.state.views


async def get_run_views(request: Request) -> RunViews:
    return request.app.state.run_views


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


DbDep = Annotated[Database, Depends(get_db)]
RunnerDep = Annotated[Runner, Depends(get_runner)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ViewsDep = Annotated[StackViews, Depends(get_views)]
RunViewsDep = Annotated[RunViews, Depends(get_run_views)]


async def get_principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    principals: Principals = request.app.state.principals
    known, principal = principals.remembered(token)
    if not known:
        principal = await run_in_threadpool(principals.look_up, token)
    if principal is None:
        raise Unauthorized("the token is not valid")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise Forbidden("this needs an admin token")
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
