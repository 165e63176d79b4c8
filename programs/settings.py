"""Where state lives by default: one data folder (``$SERVERLESS_CASES_DATA``, else ``.data/``
in the repository) holding the local file state backend, the generated passphrase of the
passphrase secrets provider, and the sandbox's records of its resources.

Anything the user has already chosen (``PULUMI_BACKEND_URL``, ``PULUMI_CONFIG_PASSPHRASE``,
``PULUMI_CONFIG_PASSPHRASE_FILE``, ``SANDBOX_CLOUD_DIR``) is left alone.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from programs import backend
from programs.targets import REPO_ROOT

DATA_ENV = "SERVERLESS_CASES_DATA"


def data_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get(DATA_ENV) or REPO_ROOT / ".data")


def ensure_passphrase(path: Path) -> Path:
    """Generate the passphrase once, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path


def state_env(env: Mapping[str, str]) -> dict[str, str]:
    data = data_dir(env)
    out: dict[str, str] = {}
    if not env.get("PULUMI_BACKEND_URL"):
        (data / "state").mkdir(parents=True, exist_ok=True)
        out["PULUMI_BACKEND_URL"] = backend.file_url(data / "state")
    if not env.get("PULUMI_CONFIG_PASSPHRASE") and not env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        out["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(ensure_passphrase(data / "passphrase"))
    if not env.get("SANDBOX_CLOUD_DIR"):
        out["SANDBOX_CLOUD_DIR"] = str(data / "sandbox-cloud")
    return out
