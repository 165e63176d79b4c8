"""Bearer tokens. Each token belongs to a tenant; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from service.db import ApiToken, Database, Remembered, Tenant

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


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None for any other header."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Principals:
    """Principals by token digest, remembered while no tenant or token changes (a request
    then needs no database round trip to authenticate). Unknown tokens are remembered too."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: Remembered[Principal | None] = Remembered(db, ("tenants", "api_tokens"))

    def remembered(self, token: str) -> tuple[bool, Principal | None]:
        """(True, principal or None for an unknown token) if remembered; (False, None) if not."""
        return self._known.get(hash_token(token))

    def look_up(self, token: str) -> Principal | None:
        return self._known.load(hash_token(token), lambda: authenticate(self.db, token))


def bootstrap(db: Database, configured: str | None) -> str | None:
    """On first start (no tokens yet) install the configured admin token or generate one.
    Returns a generated token so the caller can print it once; None otherwise."""
    with db.session() as session:
        if session.scalar(select(ApiToken.id).limit(1)) is not None:
            return None
    token = issue_token(db, "admin", admin=True, token=configured)
    return None if configured else token
