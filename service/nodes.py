"""Nodes and their leases: each node renews a row in the database; a node whose lease ran out
(plus a grace period) is dead to the others, and one live node takes over its runs.

Lease times are written and compared by the nodes' clocks: the grace period covers their skew.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update

from service.db import Database, Node, utcnow
from service.errors import FleetSettingError


class Leases:
    def __init__(self, db: Database, node_id: str, roles: str, *, seconds: float, grace: float) -> None:
        self.db, self.node_id, self.roles = db, node_id, roles
        self.seconds, self.grace = seconds, grace
        self.renewed_at = utcnow()

    def check(self) -> None:
        """On SQLite, which serves one node, refuse to be a second live node."""
        if self.db.shared:
            return
        with self.db.session() as session:
            others = session.scalars(select(Node.id).where(Node.id != self.node_id,
                                                           Node.lease_expires_at > utcnow())).all()
        if others:
            raise FleetSettingError(
                f"SERVERLESS_CASES_DATABASE_URL: SQLite serves one node, and node {others[0]!r} is live on this "
                "database; a fleet needs PostgreSQL (postgresql+psycopg://...)")

    def join(self) -> None:
        """Register this node (or take its row back after a restart)."""
        self.check()
        now = utcnow()
        with self.db.session() as session:
            node = session.get(Node, self.node_id)
            if node is None:
                session.add(Node(id=self.node_id, roles=self.roles, started_at=now, lease_expires_at=self._until(now)))
            else:
                node.roles, node.started_at, node.lease_expires_at = self.roles, now, self._until(now)
        self.renewed_at = now

    def renew(self) -> bool:
        """Extend this node's lease; False if its row is gone (another node took its runs over)."""
        now = utcnow()
        with self.db.session() as session:
            done = session.execute(update(Node).where(Node.id == self.node_id).values(lease_expires_at=self._until(now))
                                   .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
        if done:
            self.renewed_at = now
        return bool(done)

    def lapsed(self) -> bool:
        """Whether this node's own lease has run out (it could not renew it in time)."""
        return utcnow() > self._until(self.renewed_at)

    def dead(self) -> list[str]:
        """Nodes whose lease ran out more than the grace period ago."""
        cutoff = utcnow() - dt.timedelta(seconds=self.grace)
        with self.db.session() as session:
            return list(session.scalars(select(Node.id).where(Node.id != self.node_id,
                                                              Node.lease_expires_at < cutoff)).all())

    def take_over(self, node_id: str) -> bool:
        """Claim a dead node's runs: True for exactly one of the nodes that try."""
        cutoff = utcnow() - dt.timedelta(seconds=self.grace)
        with self.db.session() as session:
            gone = session.execute(delete(Node).where(Node.id == node_id, Node.lease_expires_at < cutoff)
                                   .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
        return bool(gone)

    def leave(self) -> None:
        with self.db.session() as session:
            session.execute(delete(Node).where(Node.id == self.node_id).execution_options(synchronize_session=False))

    def _until(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.seconds)
