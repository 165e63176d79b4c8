"""Finished runs do not pile up: old ones and their events are deleted, each stack's latest kept."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from service import retention
from service.db import Database, Run, RunEvent, StackRecord, Tenant

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'service.db'}")
    with db.session() as session:
        session.add(Tenant(id="acme"))
        session.flush()
        session.add(StackRecord(tenant_id="acme", name="s", pulumi_stack="acme.s", case="todo-app", target="sandbox",
                                status="ready", last_run_id="run-0"))
        session.flush()
        for age in range(6):  # run-0 the newest, run-5 the oldest, all finished long ago
            when = NOW - dt.timedelta(days=100 + age)
            session.add(Run(id=f"run-{age}", tenant_id="acme", stack_name="s", pulumi_stack="acme.s", kind="update",
                            status="succeeded", params={}, queued_at=when, finished_at=when))
            session.add(RunEvent(run_id=f"run-{age}", seq=1, data={"type": "summary"}))
        session.add(Run(id="old-but-queued", tenant_id="acme", stack_name="s", pulumi_stack="acme.s", kind="update",
                        status="queued", params={}, queued_at=NOW - dt.timedelta(days=200)))
    return db


def test_old_runs_and_their_events_go_and_each_stacks_latest_stay(tmp_path: Path) -> None:
    db = _database(tmp_path)
    with db.session() as session:
        gone = retention.prune(session, older_than=NOW - dt.timedelta(days=30), keep_per_stack=2)
    assert gone == 4
    with db.session() as session:
        left = set(session.scalars(select(Run.id)))
        events = session.scalar(select(func.count()).select_from(RunEvent))
    assert left == {"run-0", "run-1", "old-but-queued"}  # the 2 latest, and a run still to come however old
    assert events == 2  # the deleted runs' events went with them


def test_recent_runs_are_kept_however_many(tmp_path: Path) -> None:
    db = _database(tmp_path)
    with db.session() as session:
        assert retention.prune(session, older_than=NOW - dt.timedelta(days=365), keep_per_stack=1) == 0
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 7
