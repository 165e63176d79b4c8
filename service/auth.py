"""Bearer tokens. Each token belongs to a tenant; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from service.db import ApiToken, Database, Tenant

TOKEN_PREFIX = "sc_"


@dataclass(frozen=True)
class Principal:
    tenant: str
    admin: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def issue_token(db: Database, tenant: str, *, admin: bool = False, token: str | None = None) -> str:
    token = token or new_token()
    with db.session() as session:
        if session.get(Tenant, tenant) is None:
            session.add(Tenant(id=tenant))
            session.flush()
        session.add(ApiToken(tenant_id=tenant, token_hash=hash_token(token), admin=admin))
    return token


def authenticate(db: Database, token: str) -> Principal | None:
    digest = hash_token(token)
    with db.session() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        return Principal(row.tenant_id, row.admin) if row is not None else None


class Principals:
    """Principals by token digest, remembered while no tenant or token changes (a request
    then needs no database round trip to authenticate)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: dict[str, Principal | None] = {}
        self._version = db.version("tenants", "api_tokens")

    def remembered(self, token: str) -> Principal | bool | None:
        """The principal (or None for an unknown token) if remembered; False if not."""
        if self.db.version("tenants", "api_tokens") != self._version:
            return False
        return self._known.get(hash_token(token), False)

    def look_up(self, token: str) -> Principal | None:
        version = self.db.version("tenants", "api_tokens")  # noted before reading
        principal = authenticate(self.db, token)
        if version != self._version:
            self._known, self._version = {}, version
        if len(self._known) < 10_000:  # bounded: unknown tokens are remembered too
            self._known[hash_token(token)] = principal
        return principal


def bootstrap(db: Database, configured: str | None) -> str | None:
    """On first start (no tokens yet) install the configured admin token or generate one.
    Returns a generated token so the caller can print it once; None otherwise."""
    with db.session() as session:
        if session.scalar(select(ApiToken.id).limit(1)) is not None:
            return None
    token = issue_token(db, "admin", admin=True, token=configured)
    return None if configured else token
