"""A run's state transitions out of ``queued``, each one conditional update: a run is claimed
(to start) or dropped (cancelled) only if it is still queued, so a cancel racing the scheduler,
or two schedulers, can never both win. The database decides, not a lock in one process."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.db import Run, note_changed, utcnow

FINISHED = ("succeeded", "failed", "cancelled", "interrupted")


def claim(session: Session, run_id: str, *, ticket: str, node_id: str) -> bool:
    """Mark the run running for the engine's ``ticket`` on ``node_id`` if it is still queued;
    False if it is not (cancelled, or claimed by another ticket)."""
    return _transition(session, run_id, status="running", started_at=utcnow(), ticket=ticket, node_id=node_id)


def drop(session: Session, run_id: str, *, error_type: str, detail: str) -> bool:
    """Cancel the run if it is still queued (its sealed secrets go with it); False if it is not."""
    return _transition(session, run_id, status="cancelled", finished_at=utcnow(), sealed_secrets=None,
                       error_type=error_type, error_detail=detail)


def fail(session: Session, run_id: str, *, error_type: str, detail: str, from_status: str = "queued") -> bool:
    """Fail the run if it is still ``from_status`` (it could not start); False if it is not."""
    return _transition(session, run_id, status="failed", finished_at=utcnow(), sealed_secrets=None,
                       error_type=error_type, error_detail=detail, from_status=from_status)


def _transition(session: Session, run_id: str, *, from_status: str = "queued", **values: Any) -> bool:
    result = session.execute(update(Run).where(Run.id == run_id, Run.status == from_status).values(**values)
                             .execution_options(synchronize_session="fetch"))
    changed = bool(result.rowcount)  # type: ignore[attr-defined]
    if changed:
        note_changed(session, "runs")
    return changed
