"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from service.auth import Principal, authenticate
from service.db import Database
from service.errors import Forbidden, Unauthorized
from service.runner import Runner
from service.settings import Settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_runner(request: Request) -> Runner:
    return request.app.state.runner


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


DbDep = Annotated[Database, Depends(get_db)]
RunnerDep = Annotated[Runner, Depends(get_runner)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_principal(db: DbDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    principal = authenticate(db, token.strip())
    if principal is None:
        raise Unauthorized("the token is not valid")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise Forbidden("this needs an admin token")
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
