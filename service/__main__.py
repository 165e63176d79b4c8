"""`make run`: start the control plane on the configured (or embedded default) settings."""

from __future__ import annotations

import logging
import sys

import uvicorn

from service.app import create_app
from service.settings import get_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    print(f"serverless-cases: serving on http://{settings.host}:{settings.port} "
          f"(data in {settings.data_dir}, default target {settings.default_target})", file=sys.stderr, flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                access_log=settings.access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
