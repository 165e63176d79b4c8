"""Liveness and readiness."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from programs import backend
from service.deps import DbDep, RunnerDep, SettingsDep
from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def read_health() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def read_readiness(db: DbDep, runner: RunnerDep, settings: SettingsDep) -> JSONResponse:
    """Cheap and side-effect free (it is unauthenticated and probed often): it starts no
    process and writes nothing."""
    checks = {"backend": _backend(settings.backend), "store": _store(db)}
    if "runs" in settings.roles:  # an api-only node runs nothing: it needs no toolchain
        checks["toolchain"] = _toolchain(runner.toolchain_bin)
        checks["scheduler"] = "ok" if runner.scheduling() else "run scheduler stopped"
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _toolchain(folder: Path) -> str:
    if not os.access(folder / "pulumi", os.X_OK):
        return "pulumi CLI not found"
    return "ok" if os.access(folder / "pulumi-language-python", os.X_OK) else "Python language host not found"


def _backend(url: str) -> str:
    path = backend.folder(url)
    if path is None:
        return "ok"  # remote backends are checked by the runs themselves
    return "ok" if os.access(path, os.W_OK | os.X_OK) else "state folder is not writable"


def _store(db: DbDep) -> str:
    try:
        with db.session() as session:
            session.execute(text("SELECT 1"))
    except Exception:
        return "database is not reachable"
    return "ok"
