"""The FastAPI application: routers, typed error rendering, body-size limit, lifespan
(store, token bootstrap, crash recovery, run scheduler)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from programs import backend
from programs.targets import REPO_ROOT
from service.auth import Principals, bootstrap
from service.db import Database, arrived
from service.errors import PayloadTooLarge, ServiceError, ToolchainMissing
from service.kept_reads import KeptReads
from service.routers import ROUTERS
from service.routers.health import router as health_router
from service.runner import Runner
from service.settings import Settings, get_settings
from service.views import RunViews, StackViews

LOG = logging.getLogger("serverless_cases.service")


def resolve_toolchain(settings: Settings) -> Path:
    if settings.toolchain_bin is not None:
        return settings.toolchain_bin
    try:
        done = subprocess.run([str(REPO_ROOT / "toolchain" / "ensure-pulumi.sh")], capture_output=True, text=True,
                              check=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainMissing("no Pulumi toolchain: run `make setup` (needs Go or a pulumi CLI)") from exc
    return Path(done.stdout.strip().splitlines()[-1])


def _error(status: int, error: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


class Arrival:
    """Marks each HTTP request's arrival, so what it reads is at least as new as that moment
    (``service.db.arrived``). Not the lifespan: the tasks it starts live on and must read fresh."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with arrived():
            await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not they declare a length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    def _too_large(self) -> JSONResponse:
        return _error(413, PayloadTooLarge.__name__, f"the body is larger than {self.limit} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._too_large()(scope, receive, send)
            return
        seen, exceeded = 0, False

        async def limited() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                exceeded = True  # stop the app reading; its answer is replaced below
                return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not exceeded:
                await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await self._too_large()(scope, receive, send)


def create_app(settings: Settings | None = None, *, toolchain_bin: Path | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if (state := backend.folder(settings.backend)) is not None:
            state.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(backend.prepare_postgres_state, settings.backend)
        db = Database(settings.database, idle_transaction_seconds=settings.node_lease_seconds)
        generated = bootstrap(db, settings.bootstrap_token.get_secret_value() if settings.bootstrap_token else None)
        if generated:
            # Printed once, to the console only: the store keeps its hash.
            print(f"serverless-cases: admin token (shown once, keep it): {generated}", file=sys.stderr, flush=True)
        runner = Runner(settings, db, toolchain_bin or resolve_toolchain(settings))
        app.state.settings, app.state.db, app.state.runner = settings, db, runner
        app.state.principals, app.state.views, app.state.run_views = Principals(db), StackViews(db), RunViews(db)
        await asyncio.to_thread(runner.open)  # the engine's set-up calls refuse a running event loop
        if "runs" in settings.roles:
            await asyncio.to_thread(runner.start)
        else:
            LOG.info("this node's roles are %s: it accepts runs, and nodes with the runs role execute them",
                     ",".join(sorted(settings.roles)))
        runner.watch()
        # Everything loaded so far (the case catalog and its Pulumi SDKs included) lives as
        # long as the process: kept out of the collector's full passes, which would otherwise
        # pause requests to walk it.
        gc.freeze()
        try:
            yield
        finally:
            await asyncio.to_thread(runner.stop)
            db.dispose()

    app = FastAPI(title="serverless-cases", version="1.0.0", lifespan=lifespan, redirect_slashes=False,
                  description="Create, preview, update, refresh and destroy stacks of secure-by-default AWS "
                              "serverless reference architectures.")
    for router in ROUTERS if "api" in settings.roles else [health_router]:
        app.include_router(router)

    @app.exception_handler(ServiceError)
    async def render_service_error(request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return _error(exc.status_code, exc.type, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def render_invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only where and what: never echo the input (it may hold a secret argument).
        problems = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
        error = "InvalidStackName" if any("name" in p["loc"] for p in problems) else "InvalidRequest"
        return _error(422, error, json.loads(json.dumps(problems)))

    @app.exception_handler(StarletteHTTPException)
    async def render_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not even decode the body
            return _error(422, "InvalidRequest", "the body is not valid JSON (UTF-8)")
        names = {404: "NotFound", 405: "MethodNotAllowed", 406: "NotAcceptable", 413: "PayloadTooLarge",
                 415: "UnsupportedMediaType"}
        return _error(exc.status_code, names.get(exc.status_code, "HTTPError"), str(exc.detail),
                      dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def render_unexpected(request: Request, exc: Exception) -> JSONResponse:
        LOG.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "InternalError", "an unexpected error occurred; it is in the service log")

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if "api" in settings.roles:
        app.add_middleware(KeptReads)  # a kept read skips the framework
    app.add_middleware(Arrival)
    return app
