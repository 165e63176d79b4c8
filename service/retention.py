"""What the service keeps of finished runs: runs and their events older than the retention are
deleted, except each stack's latest runs (and the run its stack shows as its last)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.db import Run, RunEvent, StackRecord, note_changed
from service.queue import FINISHED

BATCH = 5000


def prune(session: Session, *, older_than: dt.datetime, keep_per_stack: int) -> int:
    """Delete the finished runs (and their events) that ended before ``older_than`` and are not
    among their stack's ``keep_per_stack`` latest; returns how many runs went."""
    ranked = select(Run.id, func.row_number().over(
        partition_by=Run.pulumi_stack, order_by=(Run.queued_at.desc(), Run.id.desc())).label("rank")).subquery()
    shown = select(StackRecord.last_run_id).where(StackRecord.last_run_id.is_not(None))
    doomed = list(session.scalars(
        select(Run.id).join(ranked, ranked.c.id == Run.id)
        .where(Run.status.in_(FINISHED), Run.finished_at < older_than, ranked.c.rank > keep_per_stack,
               Run.id.not_in(shown)).limit(BATCH)))
    if doomed:
        session.execute(delete(RunEvent).where(RunEvent.run_id.in_(doomed)))
        session.execute(delete(Run).where(Run.id.in_(doomed)))
        note_changed(session, "runs")
    return len(doomed)
