"""The state backend: the local file backend's URL, its folder, and the repair a killed CLI
needs (``file://``); and how any DIY backend's checkpoints are compressed.

The file backend stores each state file with a metadata *sidecar* (``<file>.attrs``, JSON).
The blob library writes a state file through a temporary file and a rename, but the sidecar
in place: a CLI killed during that write leaves an empty sidecar, and every later command on
the stack then fails with ``failed to load checkpoint: EOF``. The sidecar holds nothing Pulumi
needs, so the project's URLs turn sidecars off (``metadata=skip``), and recovery removes the
broken ones that state written without that option can still hold.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

LOG = logging.getLogger("serverless_cases.backend")
SCHEME = "file://"
SIDECAR_SUFFIX = ".attrs"
NO_SIDECARS = "metadata=skip"
Compression = Literal["gzip", "zstd", "none"]


def compression_env(compression: Compression) -> dict[str, str]:
    """The CLI's environment for writing checkpoints compressed so (both switches set, so an
    ambient one cannot contradict the choice). Reading needs none: the CLI finds any format."""
    return {"PULUMI_DIY_BACKEND_GZIP": str(compression == "gzip").lower(),
            "PULUMI_DIY_BACKEND_ZSTD": str(compression == "zstd").lower()}


def file_url(folder: Path) -> str:
    """The file backend URL for ``folder``, without metadata sidecars."""
    return f"{SCHEME}{folder}?{NO_SIDECARS}"


def without_sidecars(url: str) -> str:
    """``url`` with metadata sidecars turned off, if it is a file backend that does not choose."""
    if not url.startswith(SCHEME) or "metadata" in parse_qs(urlsplit(url).query, keep_blank_values=True):
        return url
    return f"{url}{'&' if '?' in url else '?'}{NO_SIDECARS}"


def folder(url: str) -> Path | None:
    """The folder of a file backend URL (``None`` for any other backend)."""
    if not url.startswith(SCHEME):
        return None
    return Path(url.removeprefix(SCHEME).split("?", 1)[0]).expanduser()


def repair_sidecars(url: str) -> list[Path]:
    """Remove the metadata sidecars under a file backend that do not hold a JSON object (an
    interrupted write); return them. Other backends have no sidecars: nothing is done."""
    root = folder(url)
    if root is None or not root.is_dir():
        return []
    removed = []
    for sidecar in root.rglob(f"*{SIDECAR_SUFFIX}"):
        try:
            intact = isinstance(json.loads(sidecar.read_bytes() or b"null"), dict)
        except (OSError, ValueError):
            intact = False
        if not intact:
            sidecar.unlink(missing_ok=True)
            removed.append(sidecar)
    if removed:
        LOG.warning("removed %d broken state metadata file(s) left by an interrupted write", len(removed))
    return removed


POSTGRES_SCHEMES = ("postgres://", "postgresql://")
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PREPARING = 0x5C5C_57A7E  # the advisory lock nodes take to create the table one at a time


def prepare_postgres_state(url: str) -> bool:
    """Create the table of Pulumi's ``postgres://`` backend if it is missing (its own schema:
    pkg/backend/diy/postgres/schema.sql); True if this call created it.

    The CLI creates the table on its first use of a database, and two CLIs doing so at once collide
    in PostgreSQL's catalogue (``duplicate key ... pg_type_typname_nsp_index``, 23505): one run of a
    new fleet's first two then fails. A node prepares it at start, under an advisory lock so that
    nodes starting together do not collide either; the CLI then finds the table and creates nothing.
    Other backends, and a table name other than a plain identifier, are left to the CLI."""
    if not url.startswith(POSTGRES_SCHEMES):
        return False
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    table = (query.pop("table", None) or ["pulumi_state"])[0]
    if not _TABLE.fullmatch(table):
        return False
    import psycopg  # the service's dependency; the programs never reach here
    from psycopg import sql

    dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query, doseq=True)))
    with psycopg.connect(dsn) as connection:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_PREPARING,))
        if connection.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,):
            return False
        connection.execute(sql.SQL("CREATE TABLE {} (key TEXT PRIMARY KEY, data JSON NOT NULL, "
                                   "updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now())")
                           .format(sql.Identifier(table)))
        connection.execute(sql.SQL("CREATE INDEX {} ON {} (key text_pattern_ops)")
                           .format(sql.Identifier(f"{table}_key_prefix_idx"), sql.Identifier(table)))
    LOG.info("created the state backend's table %s", table)
    return True
