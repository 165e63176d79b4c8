"""Nodes and their leases: each node renews a row in the database; a node whose lease ran out
(plus a grace period) is dead to the others, and one live node takes over its runs.

Lease times are written and compared by the nodes' clocks: the grace period covers their skew.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

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
        """Register this node (or take its row back after a restart, or after others took its
        runs over): a fresh lease."""
        self.check()
        now = utcnow()
        values = {"roles": self.roles, "started_at": now, "lease_expires_at": self._until(now)}
        with self.db.session() as session:
            if not self._update(session, now=None, **values):
                session.add(Node(id=self.node_id, **values))
        self.renewed_at = now

    def renew(self) -> bool:
        """Extend this node's lease; False if it is dead to the others (it ran out more than the
        grace period ago) or gone (another node took its runs over): the node must then stop its
        runs' engines and join again. A node taking this one's runs over holds its row, so a
        renewal waits for the take-over to finish and then finds the row gone."""
        now = utcnow()
        with self.db.session() as session:
            done = self._update(session, now=now, lease_expires_at=self._until(now))
        if done:
            self.renewed_at = now
        return done

    def _update(self, session: Any, *, now: dt.datetime | None, **values: Any) -> bool:
        query = update(Node).where(Node.id == self.node_id)
        if now is not None:  # a renewal: only of a lease the others do not take for dead yet
            query = query.where(Node.lease_expires_at >= now - dt.timedelta(seconds=self.grace))
        done = session.execute(query.values(**values).execution_options(synchronize_session=False))
        return bool(done.rowcount)

    def lapsed(self) -> bool:
        """Whether this node's own lease has run out (it could not renew it in time)."""
        return utcnow() > self._until(self.renewed_at)

    def dead(self) -> list[str]:
        """Nodes whose lease ran out more than the grace period ago."""
        cutoff = utcnow() - dt.timedelta(seconds=self.grace)
        with self.db.session() as session:
            return list(session.scalars(select(Node.id).where(Node.id != self.node_id,
                                                              Node.lease_expires_at < cutoff)).all())

    def take_over(self, node_id: str, recover: Callable[[str], int]) -> int | None:
        """Take a dead node's runs over: ``recover`` puts its pending workflows back in the queue
        while this node holds the dead node's row, which is then deleted. Exactly one of the
        nodes that try does it (how many workflows; None for the others). The dead node cannot
        renew meanwhile: its renewal waits for the row, then finds it gone, and only then does it
        join again and execute workflows the take-over cannot have touched."""
        cutoff = utcnow() - dt.timedelta(seconds=self.grace)
        with self.db.session() as session:
            dead = session.scalar(select(Node.id).where(Node.id == node_id, Node.lease_expires_at < cutoff)
                                  .with_for_update(skip_locked=True))
            if dead is None:
                return None
            count = recover(node_id)
            session.execute(delete(Node).where(Node.id == node_id).execution_options(synchronize_session=False))
        return count

    def leave(self) -> None:
        with self.db.session() as session:
            session.execute(delete(Node).where(Node.id == self.node_id).execution_options(synchronize_session=False))

    def _until(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.seconds)
