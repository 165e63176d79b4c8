"""Service settings: one pydantic-settings class, read from ``SERVERLESS_CASES_*`` environment
variables, with embedded defaults for a laptop (loopback, local file backend and SQLite in
the data folder, sandbox target, a generated passphrase kept readable by the owner only).

Outside ``development`` the generated passphrase and a non-loopback bind without an explicit
secrets choice are refused.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from programs import backend
from programs import settings as state_settings
from programs.backend import Compression
from programs.targets import REPO_ROOT

Target = Literal["sandbox", "aws"]
Role = Literal["api", "runs"]
ROLES: frozenset[Role] = frozenset({"api", "runs"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVERLESS_CASES_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    roles: Annotated[frozenset[Role], NoDecode] = ROLES
    """What this node does, comma-separated: ``api`` (serve the REST API) and ``runs`` (execute
    queued runs, recover crashed ones). A node without ``runs`` only accepts work; without
    ``api`` it serves only ``/healthz`` and ``/readyz``."""
    node_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    """This node's stable id (the run engine's executor id); default: the host's name."""
    fleet: bool = False
    """This node is one of several on one database: it needs PostgreSQL, a shared state backend
    (``postgres://`` or ``s3://``) and a shared passphrase; a node on SQLite is always alone."""
    node_lease_seconds: float = Field(default=15.0, gt=0, le=3600)
    """How long a node's lease lasts; nodes renew it every third of that."""
    node_grace_seconds: float = Field(default=15.0, ge=0, le=3600)
    """How long after a node's lease ran out another node takes its runs over."""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = REPO_ROOT / ".data"
    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite:///<data_dir>/service.db``. Postgres works too."""
    backend_url: str | None = None
    """Pulumi state backend; default the local file backend ``file://<data_dir>/state``. File
    backends get ``metadata=skip`` unless they choose (see :mod:`programs.backend`)."""
    state_compression: Compression = "gzip"
    """How the runs' CLI writes stack state: ``gzip`` (the default), ``zstd`` or ``none``. A
    compressed checkpoint is about a fourteenth of the plain JSON, and the CLI rewrites it at every
    step of a run: on a ``postgres://`` backend the plain one made PostgreSQL parse, compress and
    copy some 200 KB per step. Any format is read; a stack written in another is converted at its
    next write. Every CLI reads ``gzip``; ``zstd`` needs one that knows it (the pinned CLI does)."""
    secrets_provider: str | None = None
    """A Pulumi secrets provider URL (``awskms://...``, ``hashivault://...``); default: passphrase."""
    passphrase: SecretStr | None = None
    """Passphrase for the passphrase secrets provider; default: generated once into the data folder."""
    default_target: Target = "sandbox"
    max_parallel_runs: int = Field(default=2, ge=1, le=64)
    run_parallelism: int = Field(default=32, ge=1, le=256)
    """How many resource operations one run's engine carries out at once (``pulumi up
    --parallel``; the default is what the CLI chooses on an 8-core workstation). The CLI's own
    default is four per core of the machine it runs on, a cap on waiting for AWS that has nothing
    to do with the node's CPUs: 8 on a 2-core node, where a case's ninth ready resource waited a
    whole AWS operation for a free slot. Lower it for an account whose API limits are tight."""
    cancel_grace_seconds: float = Field(default=120.0, gt=0)
    run_retention_days: float = Field(default=30.0, gt=0)
    """Finished runs (and their events) older than this are deleted, but for each stack's latest."""
    runs_kept_per_stack: int = Field(default=20, ge=1)
    toolchain_bin: Path | None = None
    """Folder holding ``pulumi`` and the language host; default: ``toolchain/ensure-pulumi.sh``."""
    bootstrap_token: SecretStr | None = None
    """An admin token to install on first start; when absent one is generated and printed once."""
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    access_log: bool = False
    """One log line per HTTP request (off: it costs about a quarter of a read's CPU; runs and
    errors are logged either way)."""
    run_niceness: int = Field(default=19, ge=0, le=19)
    """CPU priority of runs (their workers, CLIs and plugins): 19, the lowest, keeps the API's
    reads fast while runs are in progress; 0 lets runs compete evenly with other work."""
    warm_worker: bool = True
    """Fork each run's worker from one process that has done every case's imports and the CLI
    check (the fork server); off, each run starts a fresh interpreter that imports what it needs."""
    preload_plugins: bool = True
    """Fork each run's Python plugins (language host, sandbox provider, dynamic resources, policy
    pack) from processes that have done their imports (``toolchain/preload.py``); off, each starts
    a fresh interpreter, as under ``pulumi up``."""
    sandbox_latency_ms: int = Field(default=0, ge=0, le=60_000)
    """Simulated AWS API latency per sandbox create/update/delete (demos, cancellation drills)."""
    sandbox_quotas: str = ""
    """The sandbox account's quotas where they are not AWS's defaults, as a JSON object of type
    token to limit (an account raised CloudFront's 20 response headers policies to 100:
    ``{"aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": 100}``); the sandbox says
    which type tokens have a quota."""
    sandbox_cloud: Path | None = None
    """Where the sandbox target keeps its records (default ``<data_dir>/sandbox-cloud``): nodes of a
    fleet on one machine share one."""
    sandbox_gate_dir: Path | None = None
    """A folder whose ``closed`` file holds sandbox operations until it is removed or the run is
    cancelled (drills and tests keep a run in progress without racing the clock)."""

    @field_validator("sandbox_quotas")
    @classmethod
    def _quotas_are_counts(cls, value: str) -> str:
        try:
            given = json.loads(value) if value.strip() else {}
        except ValueError:
            given = None
        if not isinstance(given, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                  for v in given.values()):
            raise ValueError("not a JSON object of type token to a count, like "
                             '{"aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": 100}')
        return value

    @field_validator("roles", mode="before")
    @classmethod
    def _split_roles(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {part.strip() for part in value.split(",") if part.strip()}
        if not value:
            raise ValueError("SERVERLESS_CASES_ROLES needs at least one of: api, runs")
        return value

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'service.db'}"

    @property
    def backend(self) -> str:
        return backend.without_sidecars(self.backend_url) if self.backend_url else backend.file_url(self.data_dir / "state")

    @property
    def passphrase_file(self) -> Path:
        return self.data_dir / "passphrase"

    @property
    def sandbox_cloud_dir(self) -> Path:
        return self.sandbox_cloud or self.data_dir / "sandbox-cloud"

    @property
    def node(self) -> str:
        return self.node_id or nodes_default_id()

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.environment == "production":
            if self.secrets_provider is None and self.passphrase is None:
                raise ValueError("production needs SERVERLESS_CASES_SECRETS_PROVIDER or SERVERLESS_CASES_PASSPHRASE; "
                                 "the generated passphrase is for development only")
            if self.database_url is None:
                raise ValueError("production needs SERVERLESS_CASES_DATABASE_URL")
        if self.fleet:
            self._check_fleet()
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = self.host == "localhost"
        if not loopback and self.environment == "development" and self.bootstrap_token is None:
            raise ValueError("binding beyond loopback in development needs an explicit SERVERLESS_CASES_BOOTSTRAP_TOKEN")
        return self

    def _check_fleet(self) -> None:
        """Settings a node of a fleet cannot work with, each refused with the setting named."""
        if not self.database.startswith("postgresql"):
            raise ValueError("SERVERLESS_CASES_DATABASE_URL: a fleet needs PostgreSQL (postgresql+psycopg://...); "
                             "SQLite serves one node")
        if self.backend_url is None or backend.folder(self.backend) is not None:
            raise ValueError("SERVERLESS_CASES_BACKEND_URL: a fleet needs a state backend every node reaches "
                             "(postgres://... or s3://...), not a local folder")
        if self.passphrase is None:
            raise ValueError("SERVERLESS_CASES_PASSPHRASE: a fleet needs one passphrase shared by its nodes (it seals "
                             "queued runs' secret arguments, and is the stacks' secrets passphrase unless "
                             "SERVERLESS_CASES_SECRETS_PROVIDER is set); a generated one lives on one node only")

    def pulumi_secrets_env(self) -> dict[str, str]:
        """How the CLI unlocks the stack's secrets, without putting the passphrase in argv."""
        if self.secrets_provider is not None:
            return {}
        if self.passphrase is not None:
            return {"PULUMI_CONFIG_PASSPHRASE": self.passphrase.get_secret_value()}
        return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(state_settings.ensure_passphrase(self.passphrase_file))}

    def passphrase_bytes(self) -> bytes:
        if self.passphrase is not None:
            return self.passphrase.get_secret_value().encode()
        return state_settings.ensure_passphrase(self.passphrase_file).read_bytes()


def nodes_default_id() -> str:
    import socket

    return socket.gethostname() or "node"


@lru_cache
def get_settings() -> Settings:
    return Settings()
