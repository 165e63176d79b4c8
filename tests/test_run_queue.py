"""A queued run leaves the queue once: a cancel and the scheduler racing for it (on one node
or two) cannot both win, because each transition is one conditional update."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from programs.targets import REPO_ROOT
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
    from service.outcomes import recoveries_failed_in_a_row

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


def _runner(db: Database, tmp_path: Path, *, leased: bool = True) -> Any:
    from service.runner import Runner
    from service.settings import Settings

    settings = Settings(data_dir=tmp_path, passphrase="test passphrase", node_id="here")  # type: ignore[arg-type]
    runner = Runner(settings, db, tmp_path / "no-toolchain")
    if leased:  # what Runner.open does, without the engine
        runner.fence.join()
    return runner


def _owned() -> bool:
    return True


def _queue_more(db: Database, *runs: tuple[str, str, int]) -> None:
    with db.session() as session:
        session.add_all(Run(id=run_id, tenant_id="acme", stack_name="s", pulumi_stack="acme.s", kind=kind,
                            status="queued", params={}, seq=seq) for run_id, kind, seq in runs)


def test_a_ticket_takes_its_stacks_runs_in_acceptance_order_and_recoveries_first(db: Database, tmp_path: Path) -> None:
    runner = _runner(db, tmp_path)
    with db.session() as session:
        session.get_one(Run, "r1").seq = 1
    _queue_more(db, ("r3", "update", 3), ("r2", "update", 2), ("rec", "recover", 4))
    # Tickets reach the engine in any order: each takes the next run in the database's order.
    assert [runner.take("acme.s", t) for t in ("t-a", "t-b", "t-c", "t-d", "t-e")] == ["rec", "r1", "r2", "r3", None]
    assert runner.take("acme.s", "t-b") == "r1", "a re-executed take finds the run it claimed"
    with db.session() as session:
        assert {r.id: (r.status, r.ticket, r.node_id) for r in session.query(Run)}["r2"] == ("running", "t-c", "here")


def test_no_engine_starts_on_a_node_without_a_lease(db: Database, tmp_path: Path) -> None:
    """A claimed run waits for its node's lease (the node may be cut off, and another about to
    take its runs over); a node that stops meanwhile leaves it pending, untouched."""
    from service.durable import NodeStopping

    runner = _runner(db, tmp_path, leased=False)
    assert runner.take("acme.s", "t-1") == "r1"
    waiting: list[BaseException] = []

    def start() -> None:
        try:
            runner._start("r1", _owned)
        except BaseException as exc:  # what the engine's step would see
            waiting.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    starter.join(timeout=1)
    assert starter.is_alive() and not waiting, "the run waits for a lease"
    runner._stopping.set()
    starter.join(timeout=10)
    assert [type(e) for e in waiting] == [NodeStopping]
    with db.session() as session:
        run = session.get_one(Run, "r1")
        assert (run.status, run.attempts, run.worker_pid) == ("running", 0, None)


def test_an_execution_that_no_longer_owns_its_workflow_leaves_the_run_to_the_one_that_does(
        db: Database, tmp_path: Path) -> None:
    from service.durable import Superseded

    runner = _runner(db, tmp_path)
    assert runner.take("acme.s", "t-1") == "r1"
    with pytest.raises(Superseded):
        runner._start("r1", lambda: False)
    with db.session() as session:
        run = session.get_one(Run, "r1")
        assert (run.status, run.attempts, run.worker_pid) == ("running", 0, None)


def test_a_run_cancelled_between_its_claim_and_its_start_never_starts(db: Database, tmp_path: Path) -> None:
    runner = _runner(db, tmp_path)
    assert runner.take("acme.s", "t-1") == "r1"
    assert runner.cancel("r1") == "running"  # claimed: the node running it is told
    assert runner._start("r1", _owned) is None
    with db.session() as session:
        run = session.get_one(Run, "r1")
        assert (run.status, run.error_type, run.attempts, run.worker_pid) == ("cancelled", "Cancelled", 1, None)


def _database_down_while(db: Database, monkeypatch: pytest.MonkeyPatch, down: Callable[[], bool]) -> Any:
    """Make ``db`` unreachable whenever ``down()`` says so; the real session factory, for checks."""
    real_session = db.session

    def session() -> Any:
        if down():
            raise ConnectionError("the database cannot be reached")
        return real_session()

    monkeypatch.setattr(db, "session", session)
    return real_session


def _worker_printing(events: int, pause: float = 0.0) -> Any:
    """A worker stand-in: ``events`` events on stdout, then its result."""
    import subprocess
    import sys

    script = ("import json, time\n"
              f"for i in range({events}):\n"
              "    print(json.dumps({'event': {'i': i}}), flush=True)\n"
              f"    time.sleep({pause})\n"
              "print(json.dumps({'result': {'done': True}}), flush=True)\n")
    return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_runs_last_events_wait_for_the_database_while_the_node_holds_its_lease(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker has ended and the database cannot be reached: its last events are kept and
    recorded once it answers again (they were lost after one failed try). A node without its lease
    does not wait for them: its run is carried on anew."""
    from service.db import RunEvent

    runner = _runner(db, tmp_path)
    reachable = threading.Event()
    real_session = _database_down_while(db, monkeypatch, lambda: not reachable.is_set())
    threading.Timer(2.0, reachable.set).start()  # well after the worker has ended
    with _worker_printing(5) as worker:
        outcome, returncode = runner._follow("r1", worker, 0)
    assert (outcome, returncode) == ({"result": {"done": True}}, 0)
    with real_session() as check:
        assert [e.data["i"] for e in check.query(RunEvent).filter_by(run_id="r1").order_by(RunEvent.seq)] == \
            list(range(5))

    reachable.clear()
    runner.fence.lost()  # the lease watch found this node's lease run out
    with _worker_printing(5) as worker:
        assert runner._follow("r2", worker, 0) == ({"result": {"done": True}}, 0)
    reachable.set()
    with real_session() as check:
        assert check.query(RunEvent).filter_by(run_id="r2").count() == 0


def test_a_nodes_runs_record_events_through_one_writer_and_its_lease_is_renewed_meanwhile(db: Database, tmp_path: Path) -> None:
    """32 runs printing events at once on SQLite. When each run wrote its own events, 32 writers
    polled for SQLite's one write lock (its busy handler is not fair); in a burst whose engines kept
    the cores busy, the lease renewal waited behind them past the lease's end, and the node stopped
    all its own runs. The node's one recorder writes them all, one transaction at a time; a renewal
    waits for one transaction at most."""
    from sqlalchemy import event

    from service.db import RunEvent

    runner = _runner(db, tmp_path)
    writers: set[int] = set()  # connections inside a transaction that writes events
    most = [0]
    lock = threading.Lock()

    def writing(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RUN_EVENTS"):
            with lock:
                writers.add(id(conn))
                most[0] = max(most[0], len(writers))

    def ended(conn: Any) -> None:
        with lock:
            writers.discard(id(conn))

    event.listen(db.engine, "before_cursor_execute", writing)
    event.listen(db.engine, "commit", ended)
    event.listen(db.engine, "rollback", ended)
    runs = [f"m{i}" for i in range(32)]
    _queue_more(db, *((run_id, "update", n + 2) for n, run_id in enumerate(runs)))
    outcomes: dict[str, Any] = {}
    slowest, renewals = [0.0], []
    done = threading.Event()

    def renew() -> None:  # what the housekeeper does, more often
        while not done.wait(0.2):
            started = time.monotonic()
            renewals.append(runner.fence.leases.renew())
            slowest[0] = max(slowest[0], time.monotonic() - started)

    def follow(run_id: str) -> None:
        with _worker_printing(300, pause=0.002) as worker:
            outcomes[run_id] = runner._follow(run_id, worker, 0)

    renewer = threading.Thread(target=renew)
    renewer.start()
    followers = [threading.Thread(target=follow, args=(run_id,)) for run_id in runs]
    for follower in followers:
        follower.start()
    deadline = time.monotonic() + 120
    for follower in followers:
        follower.join(timeout=max(0.0, deadline - time.monotonic()))
    done.set()
    renewer.join()
    runner.events.stop()
    assert not any(follower.is_alive() for follower in followers), "the runs' events were not recorded in 2 min"
    assert outcomes == {run_id: ({"result": {"done": True}}, 0) for run_id in runs}
    assert most[0] == 1, f"{most[0]} transactions wrote events at once"
    assert renewals and all(renewals), "every renewal extended the lease"
    assert slowest[0] < runner.settings.node_lease_seconds / 3, f"a renewal took {slowest[0]:.1f} s"
    with db.session() as check:
        for run_id in runs:
            assert [e.data["i"] for e in check.query(RunEvent).filter_by(run_id=run_id).order_by(RunEvent.id)] == \
                list(range(300)), f"{run_id}'s events, in order"


def test_a_worker_whose_events_cannot_be_recorded_for_a_while_is_still_followed_to_its_end(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording a run's events can fail (the node cut off from its database). The worker must still
    be followed to its end: one left unfollowed was out of reach of the fence, and its engine ran on
    beside the node that carried the run on. The events are kept and recorded once the database answers."""
    from service.db import RunEvent

    runner = _runner(db, tmp_path)
    failures = [3]

    def down() -> bool:
        failures[0] -= 1
        return failures[0] >= 0

    real_session = _database_down_while(db, monkeypatch, down)
    with _worker_printing(120, pause=0.005) as worker:
        outcome, returncode = runner._follow("r1", worker, 0)
    assert (outcome, returncode) == ({"result": {"done": True}}, 0)
    assert failures[0] < 0, "recording failed a few times on the way"
    with real_session() as check:
        assert [e.data["i"] for e in check.query(RunEvent).filter_by(run_id="r1").order_by(RunEvent.seq)] == \
            list(range(120))


IDLE_ENGINE = """
import sys, tempfile, time
from pathlib import Path
from sqlalchemy import event
from service.durable import DurableRuns, Handlers
from dbos._dbos import _get_dbos_instance
data = Path(tempfile.mkdtemp(dir=sys.argv[1]))
runs = DurableRuns(database_url=f"sqlite:///{data / 'service.db'}", data_dir=data, node_id="idle", parallel=4)
runs.open()
runs.launch(Handlers(take=lambda stack, ticket: None, execute=lambda run_id, owned: None))
statements = []
event.listen(_get_dbos_instance()._sys_db.engine, "before_cursor_execute",
             lambda conn, cursor, statement, *rest: statements.append(statement))
time.sleep(1)
statements.clear()
time.sleep(6)
print(len(statements))
runs.close()
"""


def test_an_idle_node_polls_the_engines_database_about_once_a_second(tmp_path: Path) -> None:
    """An idle node leaves its database nearly alone: the engine looks for runs once a second
    (each look is three statements, and about 6 ms of one core in DBOS), not five times. Measured
    in a process of its own: the engine is one per process."""
    done = subprocess.run([sys.executable, "-c", IDLE_ENGINE, str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    per_second = int(done.stdout.split()[-1]) / 6
    # About 9 a second (the runs queue, DBOS's internal queue, its background jobs and scheduler);
    # 21 when the runs queue was polled every 0.2 s.
    assert 2 <= per_second <= 13, per_second
