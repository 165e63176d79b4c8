"""Liveness and readiness."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from programs import backend
from service.db import Tenant
from service.deps import DbDep, RunnerDep, SettingsDep
from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def read_health() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def read_readiness(db: DbDep, runner: RunnerDep, settings: SettingsDep) -> JSONResponse:
    checks = {"toolchain": _toolchain(runner.toolchain_bin), "backend": _backend(settings.backend),
              "store": _store(db)}
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _toolchain(folder: Path) -> str:
    try:
        done = subprocess.run([str(folder / "pulumi"), "version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "pulumi CLI not found"
    if done.returncode != 0:
        return "pulumi CLI does not run"
    return "ok" if (folder / "pulumi-language-python").exists() else "Python language host not found"


def _backend(url: str) -> str:
    path = backend.folder(url)
    if path is None:
        return "ok"  # remote backends are checked by the runs themselves
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".ready-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
    except OSError:
        return "state folder is not writable"
    return "ok"


def _store(db: DbDep) -> str:
    try:
        with db.session() as session:
            probe = Tenant(id=f"~ready-{uuid.uuid4().hex[:20]}")
            session.add(probe)
            session.flush()
            session.delete(probe)
    except Exception:
        return "database is not writable"
    return "ok"
