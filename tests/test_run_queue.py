"""A queued run leaves the queue once: a cancel and the scheduler racing for it (on one node
or two) cannot both win, because each transition is one conditional update."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from service import queue
from service.db import Database, Run, StackRecord, Tenant


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'service.db'}")
    with database.session() as session:
        session.add(Tenant(id="acme"))
        session.flush()
        session.add(StackRecord(tenant_id="acme", name="s", pulumi_stack="acme.s", case="todo-app", target="sandbox",
                                status="queued"))
        session.add(Run(id="r1", tenant_id="acme", stack_name="s", pulumi_stack="acme.s", kind="up", status="queued",
                        params={}))
    return database


def _race(db: Database, first: Callable[[Session], bool], second: Callable[[Session], bool]) -> tuple[bool, bool]:
    """``first`` runs in a transaction that stays open a moment; ``second`` runs meanwhile."""
    results: dict[str, bool] = {}
    inside = threading.Event()

    def hold() -> None:
        with db.session() as session:
            results["first"] = first(session)
            inside.set()
            time.sleep(0.5)  # the other transition is attempted while this one is uncommitted

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    with db.session() as session:
        results["second"] = second(session)
    holder.join()
    return results["first"], results["second"]


def _status(db: Database) -> str:
    with db.session() as session:
        run = session.get(Run, "r1")
        assert run is not None
        return run.status


def test_a_run_claimed_to_start_cannot_then_be_cancelled_as_queued(db: Database) -> None:
    claimed, dropped = _race(db, lambda s: queue.claim(s, "r1", ticket="t", node_id="n"),
                             lambda s: queue.drop(s, "r1", error_type="Cancelled", detail="x"))
    assert (claimed, dropped) == (True, False)
    assert _status(db) == "running"


def test_a_cancelled_run_cannot_then_be_started(db: Database) -> None:
    dropped, claimed = _race(db, lambda s: queue.drop(s, "r1", error_type="Cancelled", detail="x"),
                             lambda s: queue.claim(s, "r1", ticket="t", node_id="n"))
    assert (dropped, claimed) == (True, False)
    assert _status(db) == "cancelled"


def test_two_schedulers_claim_a_run_once(db: Database) -> None:
    def claim(s: Session) -> bool:
        return queue.claim(s, "r1", ticket="t", node_id="n")

    assert _race(db, claim, claim) == (True, False)


def test_a_transition_counts_as_a_change_for_readers(db: Database) -> None:
    before = db.version("runs")
    with db.session() as session:
        queue.drop(session, "r1", error_type="Cancelled", detail="x")
    assert db.version("runs") > before


def test_recoveries_that_keep_failing_are_counted_until_something_else_ran(db: Database) -> None:
    from service.runner import recoveries_failed_in_a_row

    started = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with db.session() as session:
        for minute, (kind, status) in enumerate([("up", "succeeded"), ("update", "failed"), ("recover", "failed"),
                                                 ("recover", "interrupted"), ("recover", "failed")]):
            when = started + dt.timedelta(minutes=minute)
            session.add(Run(id=f"x{minute}", tenant_id="acme", stack_name="s", pulumi_stack="acme.s", kind=kind,
                            status=status, params={}, queued_at=when, finished_at=when))
    with db.session() as session:
        assert recoveries_failed_in_a_row(session, "acme.s") == 3
        session.add(Run(id="x9", tenant_id="acme", stack_name="s", pulumi_stack="acme.s", kind="recover",
                        status="succeeded", params={}, queued_at=started, finished_at=started + dt.timedelta(hours=1)))
    with db.session() as session:
        assert recoveries_failed_in_a_row(session, "acme.s") == 0
