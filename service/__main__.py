"""`make run`: start a node of the control plane on the configured (or embedded default) settings.

Settings that cannot work stop the node here, with a message naming the setting (no traceback)."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from service.app import create_app
from service.db import Database
from service.errors import FleetSettingError
from service.nodes import Leases
from service.settings import Settings, get_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = get_settings()
    except ValidationError as exc:
        for problem in exc.errors():
            where = ".".join(str(p) for p in problem.get("loc", ()))
            name = f"SERVERLESS_CASES_{where.upper()}: " if where else ""
            print(f"serverless-cases: cannot start: {name}{problem['msg'].removeprefix('Value error, ')}",
                  file=sys.stderr, flush=True)
        return 2
    print(f"serverless-cases: node {settings.node} serving on http://{settings.host}:{settings.port} "
          f"(data in {settings.data_dir}, default target {settings.default_target})", file=sys.stderr, flush=True)
    try:
        preflight(settings)
    except FleetSettingError as exc:
        print(f"serverless-cases: cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                access_log=settings.access_log)
    return 0


def preflight(settings: Settings) -> None:
    """What must hold before this node joins its database (another node on SQLite, for one)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database, idle_transaction_seconds=settings.node_lease_seconds)
    try:
        Leases(db, settings.node, "", seconds=settings.node_lease_seconds, grace=settings.node_grace_seconds).check()
    finally:
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())
