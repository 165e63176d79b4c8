"""Reads (stack reads, kept run views, the principal cache) follow every change they depend on,
and kept ones nothing else."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import httpx
import pytest
from sqlalchemy import event, update
from sqlalchemy.orm import Session
from starlette.types import Message, Receive, Scope, Send

from service import db as db_module
from service.app import Arrival, create_app
from service.auth import Principals, issue_token
from service.db import AppliedArguments, Database, FreshReads, Remembered, Run, RunEvent, StackRecord, Tenant, note_changed
from service.engine import _holds_secret
from service.settings import Settings
from service.views import RunViews, StackViews, stack_read


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'service.db'}")
    with database.session() as session:
        session.add_all([Tenant(id="acme"), Tenant(id="globex")])
    return database


def _stack(db: Database, tenant: str, name: str, status: str = "ready") -> None:
    with db.session() as session:
        session.add(StackRecord(tenant_id=tenant, name=name, pulumi_stack=f"{tenant}.{name}", case="todo-app",
                                target="sandbox", status=status))


def _alpha_run(kind: str, status: str) -> Run:
    return Run(id="run-1", tenant_id="acme", stack_name="alpha", pulumi_stack="acme.alpha", kind=kind, status=status)


def _names(views: StackViews, tenant: str, **filters: str) -> list[str]:
    items, _ = views.page(tenant, limit=100, **filters)
    return [json.loads(item)["name"] for item in items]


def _one(views: StackViews, tenant: str, name: str) -> dict[str, object]:
    found = views.one(tenant, name)
    assert found is not None
    return dict(json.loads(found))


def test_stack_reads_follow_every_stack_and_run_change(db: Database) -> None:
    views = StackViews(db)
    _stack(db, "acme", "alpha")
    assert _names(views, "acme") == ["alpha"]
    _stack(db, "acme", "beta")  # a new stack
    assert _names(views, "acme") == ["alpha", "beta"]

    with db.session() as session:  # a changed stack
        stack = session.query(StackRecord).filter_by(name="alpha").one()
        stack.status = "updating"
        session.add(_alpha_run("update", "queued"))
        stack.last_run_id = "run-1"
    alpha = _one(views, "acme", "alpha")
    assert alpha["status"] == "updating" and alpha["last_run"] == {"id": "run-1", "kind": "update", "status": "queued"}

    with db.session() as session:  # a run changing on its own shows in the stack's last_run
        session.get_one(Run, "run-1").status = "running"
    assert _one(views, "acme", "alpha")["last_run"]["status"] == "running"  # type: ignore[index]
    assert _names(views, "acme", status="updating") == ["alpha"] and _names(views, "acme", case="blog") == []

    with db.session() as session:  # a deleted stack
        session.delete(session.query(StackRecord).filter_by(name="beta").one())
    assert views.one("acme", "beta") is None and _names(views, "acme") == ["alpha"]


def _rendered_now(db: Database, tenant: str, name: str) -> bytes:
    """The stack's view rendered from its rows as they are now, nothing reused."""
    with db.session() as session:
        stack = session.query(StackRecord).filter_by(tenant_id=tenant, name=name).one()
        run = session.get(Run, stack.last_run_id) if stack.last_run_id else None
        return stack_read(stack, run, session.get(AppliedArguments, stack.pulumi_stack)).model_dump_json().encode()


def _change(db: Database, edit: Callable[[StackRecord, Run, AppliedArguments | None, Session], object]) -> None:
    with db.session() as session:
        stack = session.query(StackRecord).filter_by(name="alpha").one()
        edit(stack, session.get_one(Run, stack.last_run_id), session.get(AppliedArguments, "acme.alpha"), session)


LATER = dt.datetime(2031, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
EVERY_SHOWN_CHANGE: dict[str, Callable[[StackRecord, Run, AppliedArguments | None, Session], object]] = {
    "arguments": lambda stack, *_: setattr(stack, "args", {**stack.args, "cache_ttl_seconds": 30}),
    "secret argument names": lambda stack, *_: setattr(stack, "secret_arg_names", ["db_password"]),
    "status": lambda stack, *_: setattr(stack, "status", "updating"),
    "outputs": lambda stack, *_: setattr(stack, "outputs", {"api_url": "https://b.example"}),
    "resource count": lambda stack, *_: setattr(stack, "resource_count", 41),
    "case": lambda stack, *_: setattr(stack, "case", "blog"),
    "target": lambda stack, *_: setattr(stack, "target", "aws"),
    "created at": lambda stack, *_: setattr(stack, "created_at", LATER),
    "updated at": lambda stack, *_: setattr(stack, "updated_at", LATER),
    "the last run's status": lambda _, run, *__: setattr(run, "status", "failed"),
    "the last run's kind": lambda _, run, *__: setattr(run, "kind", "refresh"),
    "another last run": lambda stack, run, _, session: (
        session.add(Run(id="run-2", tenant_id="acme", stack_name="alpha", pulumi_stack="acme.alpha", kind=run.kind,
                        status=run.status)), setattr(stack, "last_run_id", "run-2")),
    "applied arguments": lambda *row: setattr(row[2], "args", {"cache_ttl_seconds": 5}),
    "applied secret names": lambda *row: setattr(row[2], "secret_arg_names", ["token"]),
    "no applied arguments": lambda *row: row[3].delete(row[2]),
    "applied arguments again": lambda *row: row[3].add(AppliedArguments(pulumi_stack="acme.alpha", args={}, run_id="x")),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def either_db(request: pytest.FixtureRequest, db: Database) -> Iterator[Database]:
    """The embedded database, or a fleet's (a fresh PostgreSQL database)."""
    if request.param == "sqlite":
        yield db
        return
    url = request.getfixturevalue("database")
    shared = Database(f"postgresql+psycopg://{url.removeprefix('postgresql://')}")
    with shared.session() as session:
        session.add_all([Tenant(id="acme"), Tenant(id="globex")])
    yield shared
    shared.dispose()


def test_a_stacks_view_is_the_one_its_rows_render_now_whatever_it_shows_changed(either_db: Database) -> None:
    # A page re-read after a change reuses the views of the stacks whose rows did not change:
    # a change to anything a view shows must be seen as a change (on a fleet's database too, where
    # the rows' JSON and times come back as that server writes them).
    db = either_db
    views = StackViews(db)
    for name in ("alpha", "beta"):
        _stack(db, "acme", name)
    with db.session() as session:
        session.add(_alpha_run("update", "succeeded"))
        session.add(AppliedArguments(pulumi_stack="acme.alpha", args={"cache_ttl_seconds": 60}, run_id="run-1"))
        session.query(StackRecord).filter_by(name="alpha").one().last_run_id = "run-1"
    for what, edit in EVERY_SHOWN_CHANGE.items():
        before = views.page("acme", limit=100)[0][0]
        views.one("acme", "alpha")
        _change(db, edit)
        now = _rendered_now(db, "acme", "alpha")
        assert now != before, what
        assert views.page("acme", limit=100)[0][0] == now, what
        assert views.one("acme", "alpha") == now, what
        assert views.page("acme", limit=1) == ([now], "alpha"), what
    assert views.page("acme", limit=100)[0][1] == _rendered_now(db, "acme", "beta")


def test_a_rolled_back_change_is_never_shown(db: Database) -> None:
    views = StackViews(db)
    _stack(db, "acme", "alpha")
    with pytest.raises(RuntimeError), db.session() as session:
        session.query(StackRecord).filter_by(name="alpha").one().status = "failed"
        session.flush()
        raise RuntimeError("rolled back")
    assert _one(views, "acme", "alpha")["status"] == "ready"


def test_a_tenant_reads_only_its_own_stacks(db: Database) -> None:
    views = StackViews(db)
    _stack(db, "acme", "alpha")
    _stack(db, "globex", "gamma")
    assert _names(views, "acme") == ["alpha"] and _names(views, "globex") == ["gamma"]
    assert views.one("acme", "gamma") is None and views.one("globex", "alpha") is None


def test_a_large_tenants_list_comes_a_page_at_a_time_in_name_order(db: Database) -> None:
    views = StackViews(db)
    with db.session() as session:
        session.add_all(StackRecord(tenant_id="acme", name=f"s{i:04d}", pulumi_stack=f"acme.s{i:04d}", case="todo-app",
                                    target="sandbox", status="ready") for i in range(250, -1, -1))
    seen, after = [], None
    while True:
        items, after = views.page("acme", limit=100, after=after)
        seen += [json.loads(item)["name"] for item in items]
        if after is None:
            break
    assert seen == [f"s{i:04d}" for i in range(251)]


def test_run_views_follow_every_run_change_and_name_the_runs_tenant(db: Database) -> None:
    views = RunViews(db)
    _stack(db, "acme", "alpha")
    with db.session() as session:
        session.add(_alpha_run("up", "running"))
    assert views.build("no-such-run") is None
    found = views.build("run-1")
    assert found is not None and found[0] == "acme" and json.loads(found[1])["status"] == "running"
    assert views.current("run-1") == (True, found)
    with db.session() as session:
        session.add(RunEvent(run_id="run-1", seq=1, data={"type": "prelude"}))
    assert views.current("run-1") == (True, found)  # events are not part of a run's view
    with db.session() as session:
        run = session.get_one(Run, "run-1")
        run.status, run.error_type, run.error_detail = "failed", "DeploymentFailed", "the program failed"
    assert views.current("run-1") == (False, None)
    rebuilt = views.build("run-1")
    assert rebuilt is not None
    assert json.loads(rebuilt[1])["error"] == {"error": "DeploymentFailed", "detail": "the program failed"}


def test_a_token_refused_once_is_accepted_after_it_is_issued(db: Database) -> None:
    principals = Principals(db)
    token = "sc_token-issued-later-0123456789"
    assert principals.look_up(token) is None
    assert principals.remembered(token) == (True, None)  # the refusal is remembered...
    issue_token(db, "globex", token=token)
    assert principals.remembered(token) == (False, None)  # ...until a token changes
    found = principals.look_up(token)
    assert found is not None and found.tenant == "globex" and not found.admin
    assert principals.remembered(token) == (True, found)


def test_a_value_read_before_a_change_is_returned_but_never_served(db: Database) -> None:
    remembered: Remembered[str] = Remembered(db, ("stacks",))

    def read_while_a_stack_changes() -> str:
        _stack(db, "acme", "raced")  # commits between noting the count and keeping the value
        return "read before the change"

    assert remembered.load("acme", read_while_a_stack_changes) == "read before the change"
    assert remembered.get("acme") == (False, None)

    def read_while_a_newer_value_is_kept() -> str:
        _stack(db, "acme", "raced-again")
        assert remembered.load("globex", lambda: "read after the change") == "read after the change"
        return "read before the change"

    assert remembered.load("acme", read_while_a_newer_value_is_kept) == "read before the change"
    assert remembered.get("acme") == (False, None)  # older than what is kept: not kept
    assert remembered.get("globex") == (True, "read after the change")


class _FleetDatabase:
    """A fleet's database, as far as kept values see it: only a query tells whether one is current."""

    shared = True

    def __init__(self) -> None:
        self.changes, self.queries = 0, 0

    def version(self, *tables: str) -> tuple[int, ...]:
        self.queries += 1
        return (self.changes,) * len(tables)


def test_on_a_fleet_no_kept_value_is_checked_on_the_event_loop_and_a_current_one_costs_one_query() -> None:
    db = _FleetDatabase()
    remembered: Remembered[str] = Remembered(cast(Database, db), ("stacks",))
    reads: list[str] = []

    def read(value: str) -> Callable[[], str]:
        return lambda: reads.append(value) or value

    db.queries = 0
    assert remembered.get("acme") == (False, None) and db.queries == 0  # a query here would block every request
    assert remembered.load("acme", read("first")) == "first"
    assert remembered.get("acme") == (False, None) and db.queries == 1  # kept, but only the database can say current
    assert remembered.load("acme", read("second")) == "first"  # current: the count's query, no read
    assert reads == ["first"] and db.queries == 2
    db.changes += 1  # a change committed on another node
    assert remembered.load("acme", read("third")) == "third"
    assert reads == ["first", "third"]


@pytest.mark.parametrize(("value", "secret"), [
    ("[secret]", True),
    ({"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "[secret]"}, True),
    ({"endpoints": ["https://a.example", {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                                          "ciphertext": "[secret]"}]}, True),
    ({"4dabf18193072939515e22adb298388d": "c44067f5952c0a294b673a41bacd8c17", "path": "x"}, False),  # an asset
    ("https://d111.cloudfront.net", False),
    ({"bucket": "b", "ports": [443]}, False),
])
def test_outputs_holding_a_secret_anywhere_are_reported_secret(value: object, secret: bool) -> None:
    assert _holds_secret(value) is secret


class _Reads:
    """Reads of the change counts, each finishing when the test releases it (by its order)."""

    def __init__(self) -> None:
        self.begun, self.value = 0, {"stacks": 0}
        self.release = [threading.Event() for _ in range(4)]
        self.started = threading.Semaphore(0)

    def __call__(self) -> dict[str, int]:
        mine = self.begun
        self.begun += 1
        value = dict(self.value)
        self.started.release()
        assert self.release[mine].wait(10)
        return value


def test_one_change_count_read_serves_every_caller_that_arrived_before_it_began() -> None:
    reads = _Reads()
    fresh = FreshReads(reads)
    arrived_early = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        leader = pool.submit(fresh.since, arrived_early)
        assert reads.started.acquire(timeout=10)  # the read has begun after everyone below arrived
        followers = [pool.submit(fresh.since, arrived_early) for _ in range(6)]
        reads.value = {"stacks": 1}  # committed after the read began: only a later arrival must see it
        late = pool.submit(fresh.since, time.monotonic())
        assert reads.started.acquire(timeout=10)  # the late arrival began a read of its own
        reads.release[0].set()  # the first read ends; the late one is still under way
        assert [f.result(10) for f in [leader, *followers]] == [{"stacks": 0}] * 7
        reads.release[1].set()
        assert late.result(10) == {"stacks": 1}
    assert reads.begun == 2
    assert fresh.since(arrived_early) == {"stacks": 1}  # the newest read serves an early arrival too
    reads.release[2].set()
    assert fresh.since(None) == {"stacks": 1} and reads.begun == 3  # no arrival given: a read begun now


def test_a_caller_waiting_on_a_failed_change_count_read_reads_again() -> None:
    calls: list[str] = []
    began, failing = threading.Event(), threading.Event()

    def read() -> dict[str, int]:
        calls.append("read")
        if len(calls) == 1:
            began.set()
            assert failing.wait(10)
            raise OSError("connection lost")
        return {"stacks": 5}

    fresh = FreshReads(read)
    moment = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        leader = pool.submit(fresh.since, moment)
        assert began.wait(10)
        follower = pool.submit(fresh.since, moment)
        time.sleep(0.05)
        failing.set()
        with pytest.raises(OSError):
            leader.result(10)
        assert follower.result(10) == {"stacks": 5}
    assert calls == ["read", "read"]


def test_a_fleet_nodes_read_costs_one_change_count_query_and_sees_what_another_node_committed_before_it(
        tmp_path: Path, database: str) -> None:
    url = f"postgresql+psycopg://{database.removeprefix('postgresql://')}"
    token = "fleet-reads-admin-token-0123456789"
    settings = Settings(data_dir=tmp_path, roles="api", bootstrap_token=token, passphrase="fleet reads",
                        database_url=url)
    app = create_app(settings, toolchain_bin=tmp_path / "no-toolchain")
    other_node = Database(url)
    count_reads: list[str] = []

    async def main() -> None:
        async with app.router.lifespan_context(app):
            db: Database = app.state.db
            event.listen(db.engine, "before_cursor_execute",
                         lambda _c, _cur, statement, *_: count_reads.append(statement) if "change_counts" in statement
                         and statement.lstrip().upper().startswith("SELECT") else None)
            _stack(other_node, "admin", "alpha")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://node-a",
                                         headers={"Authorization": f"Bearer {token}"}) as client:
                for _ in range(3):
                    count_reads.clear()
                    answer = await client.get("/v1/stacks/alpha")
                    assert answer.status_code == 200 and answer.json()["status"] == "ready"
                    assert len(count_reads) == 1  # the token's and the stack's freshness: one query
                with other_node.session() as session:
                    session.execute(update(StackRecord).where(StackRecord.name == "alpha").values(status="failed"))
                    note_changed(session, "stacks")
                assert (await client.get("/v1/stacks/alpha")).json()["status"] == "failed"

    try:
        asyncio.run(main())
    finally:
        other_node.dispose()


def test_only_http_requests_read_counts_as_of_their_arrival_never_the_lifespans_tasks() -> None:
    seen: dict[str, float | None] = {}

    async def inner(scope: Scope, _receive: Receive, _send: Send) -> None:
        seen[scope["type"]] = db_module._ARRIVED.get()

    async def nothing() -> Message:
        return {}

    async def ignore(_message: Message) -> None:
        return None

    async def main() -> None:
        for kind in ("http", "lifespan", "websocket"):
            await Arrival(inner)({"type": kind}, nothing, ignore)

    before = time.monotonic()
    asyncio.run(main())
    assert seen["http"] is not None and seen["http"] >= before
    assert seen["lifespan"] is None and seen["websocket"] is None  # they read counts as fresh as each call
