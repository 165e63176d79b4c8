"""The service's store: tenants and their hashed tokens, the stack registry, runs and their
events. SQLAlchemy 2 on SQLite by default (WAL, so readers never wait for the runner);
any SQLAlchemy URL (Postgres) works."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

V = TypeVar("V")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored and returned in UTC, timezone-aware on every database (SQLite drops it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the token: the token itself is never stored."""
    admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TenantAwsIdentity(Base):
    """The IAM role a tenant's ``aws`` stacks are deployed with (set by an admin)."""

    __tablename__ = "tenant_aws_identities"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    role_arn: Mapped[str] = mapped_column(String(2048))
    external_id: Mapped[str | None] = mapped_column(String(1224), nullable=True)
    """What the role's trust policy requires in ``sts:ExternalId`` (kept, never shown back)."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TenantPolicies(Base):
    """What an admin set for a tenant's runs beside the project's policy pack."""

    __tablename__ = "tenant_policies"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The project's pack configuration (``{policy: {"enforcementLevel": level}}``)."""
    packs: Mapped[list[str]] = mapped_column(JSON, default=list)
    """More policy packs: folders on the service's machine."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StackRecord(Base):
    __tablename__ = "stacks"
    __table_args__ = (Index("ix_stacks_tenant_name", "tenant_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    pulumi_stack: Mapped[str] = mapped_column(String(128), unique=True)
    case: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(16))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret_arg_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Masked: secret outputs are stored as their marker only."""
    resource_count: Mapped[int] = mapped_column(Integer, default=0)
    last_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    run_seq: Mapped[int] = mapped_column(Integer, default=0)
    """How many runs the stack has accepted: the next run's place in its order."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AppliedArguments(Base):
    """What the last successful ``up`` or ``update`` of a stack applied. The stack's own arguments
    are the desired ones (what its next run applies); a change that fails or is cancelled goes back
    to these."""

    __tablename__ = "applied_arguments"
    pulumi_stack: Mapped[str] = mapped_column(String(128), primary_key=True)
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret_arg_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    run_id: Mapped[str] = mapped_column(String(36))
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    stack_name: Mapped[str] = mapped_column(String(64))
    pulumi_stack: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What the run applies: case, target, plain args, secret argument *names*."""
    sealed_secrets: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Secret argument values, encrypted, kept only until the run has used them."""
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    """The run's place in its stack's order (given under the stack's row lock at acceptance)."""
    ticket: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    """The durable workflow that took the run (``service.durable``)."""
    node_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    """The node running it."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Executions started: more than one means a node died during the run and another carried it on."""
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    recovered: Mapped[bool] = mapped_column(default=False)
    """The run's node died while it ran; its stack was recovered and the run carried through."""
    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StackSettings(Base):
    """A stack's Pulumi settings file (its encryption salt or key, plain arguments and secret ones as
    the secrets provider's ciphertext), kept where every node can read it: a run's workspace is
    rebuilt from it on whichever node runs it."""

    __tablename__ = "stack_settings"
    pulumi_stack: Mapped[str] = mapped_column(String(128), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Node(Base):
    """A node of the service and its lease: a node whose lease has run out is dead to the others."""

    __tablename__ = "nodes"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    roles: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ChangeCount(Base):
    """Committed changes per watched table, counted in the changing transaction: what a node
    compares to know whether a view it keeps is older than a commit made on another node."""

    __tablename__ = "change_counts"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class RunEvent(Base):
    __tablename__ = "run_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class Database:
    """Sessions on one engine, and counters of committed changes to what readers are shown.

    ``version(*tables)`` grows after every commit that added, changed or deleted a row of
    one of those tables (``tenants``, ``api_tokens``, ``stacks``, ``runs``; not events): a
    reader that noted it before reading knows its copy is current while it stays the same.

    On SQLite (one node) the counters live in this process, which makes every write. On a
    server database (a fleet of nodes) each changing transaction also counts in the
    ``change_counts`` table, and ``version`` reads it: a node never keeps serving a view older
    than a commit another node made before the request arrived. One read of that table serves
    every caller that arrived before the read began (``arrived``): a request's token lookup and
    view share one, and so do the requests of the same moment.

    ``after_commit(session, action)`` runs ``action`` once the session's transaction has committed
    (work that must only follow a durable commit, such as handing a run to the engine).
    """

    WATCHED = ("tenants", "api_tokens", "stacks", "runs")

    def __init__(self, url: str, *, idle_transaction_seconds: float | None = None) -> None:
        """``idle_transaction_seconds`` (PostgreSQL): the server ends a session of this process
        that stays that long inside a transaction without running a statement, and so releases
        its locks. A node paused in the middle of a transaction (a frozen process, a stalled
        virtual machine) then blocks no other node: not the take-over of its own runs, which
        needs its lease's row."""
        sqlite = url.startswith("sqlite")
        self.shared = not sqlite
        if sqlite:  # a local file: no server to drop connections, so no ping; one per request thread
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                                                pool_size=16, max_overflow=48)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            options = ({"options": f"-c idle_in_transaction_session_timeout={int(idle_transaction_seconds * 1000)}"}
                       if idle_transaction_seconds else {})
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=16, max_overflow=48, connect_args=options)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._changes = dict.fromkeys(self.WATCHED, 0)
        self._counting = threading.Lock()
        self._shared_counts = FreshReads(self._read_counts)
        event.listen(self._sessions, "after_flush", _note_changed_tables)
        if self.shared:
            event.listen(self._sessions, "before_commit", _count_in_database)
        event.listen(self._sessions, "after_commit", self._committed)
        migrate(self.engine)
        if sqlite:
            with self.engine.connect() as connection:  # persistent in the file: set once
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")

    def version(self, *tables: str) -> tuple[int, ...]:
        if self.shared:
            counts = self._shared_counts.since(_ARRIVED.get())
            return tuple(counts.get(t, 0) for t in tables)
        return tuple(self._changes[t] for t in tables)

    def _read_counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return dict(connection.execute(select(ChangeCount.name, ChangeCount.count)).tuples().all())

    def _committed(self, session: Session) -> None:
        changed = session.info.pop("changed_tables", ())
        with self._counting:
            for table in changed:
                self._changes[table] += 1
        for action in session.info.pop("after_commit", ()):
            action()

    @staticmethod
    def after_commit(session: Session, action: Callable[[], None]) -> None:
        session.info.setdefault("after_commit", []).append(action)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


_ARRIVED: ContextVar[float | None] = ContextVar("serverless_cases_arrived", default=None)


@contextmanager
def arrived() -> Iterator[None]:
    """Within this block (a request), the change counts may come from any read that began after
    the block did; outside any such block, from a read that began after the call. For a request's
    reads, not a long stream: a stream that polls for changes must poll outside it."""
    token = _ARRIVED.set(time.monotonic())
    try:
        yield
    finally:
        _ARRIVED.reset(token)


class _Flight:
    def __init__(self, began: float) -> None:
        self.began, self.done = began, threading.Event()
        self.value: dict[str, int] | None = None


class FreshReads:
    """``since(moment)``: the result of a read that began at or after ``moment`` (monotonic
    seconds; None is now). The last read's result is reused when it began late enough, a read
    in progress that began late enough is waited for, and otherwise a new read is made: callers
    of the same moment share one round trip, and none gets an answer older than its moment."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._last: tuple[float, dict[str, int]] = (float("-inf"), {})
        self._flight: _Flight | None = None

    def since(self, moment: float | None) -> dict[str, int]:
        with self._lock:
            now = time.monotonic()
            moment = now if moment is None else moment
            began, value = self._last
            if began >= moment:
                return value
            flight = self._flight
            leading = flight is None or flight.began < moment
            if leading:
                flight = self._flight = _Flight(now)
        assert flight is not None
        if not leading:
            flight.done.wait()
            return flight.value if flight.value is not None else self.since(moment)  # its read failed: try one
        try:
            flight.value = self._read()
            return flight.value
        finally:
            with self._lock:
                if flight.value is not None and flight.began > self._last[0]:
                    self._last = (flight.began, flight.value)
                if self._flight is flight:
                    self._flight = None
            flight.done.set()


def _count_in_database(session: Session) -> None:
    session.flush()  # nothing is flushed after this: the counting UPDATE is the transaction's last lock
    changed = sorted(session.info.get("changed_tables", ()))
    if changed:
        session.execute(update(ChangeCount).where(ChangeCount.name.in_(changed))
                        .values(count=ChangeCount.count + 1).execution_options(synchronize_session=False))


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema of every database made before migrations existed


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema with the service's Alembic migrations. A database
    made before migrations existed (tables, no ``alembic_version``) is stamped at the baseline first,
    so its stacks, runs and tokens are upgraded in place."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "tenants" in tables and "alembic_version" not in tables:
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")


class Remembered(Generic[V]):
    """Values by key, kept while the given tables see no committed change.

    ``load`` notes the change count before reading: a value read under an older count than
    the one kept is returned but not kept, and a newer count drops every kept value. Bounded:
    past ``limit`` values, all are dropped.
    """

    def __init__(self, db: Database, tables: tuple[str, ...], limit: int = 10_000) -> None:
        self.db, self.tables, self.limit = db, tables, limit
        self._version = db.version(*tables)
        self._values: dict[str, V] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, V | None]:
        """(True, value) if a value is kept and still current; (False, None) if not. Never touches
        the database, so callable on the event loop: on a shared database (a fleet), where only the
        database knows whether a value is current, nothing is current here (``load`` it instead)."""
        if self.db.shared:
            return False, None
        with self._lock:
            if self._version != self.db.version(*self.tables) or key not in self._values:
                return False, None
            return True, self._values[key]

    def load(self, key: str, read: Callable[[], V]) -> V:
        """The value for ``key``: the kept one if still current, else ``read()`` (kept if current)."""
        version = self.db.version(*self.tables)
        with self._lock:
            if version == self._version and key in self._values:
                return self._values[key]
        value = read()
        with self._lock:
            if version < self._version:
                return value
            if version > self._version or len(self._values) >= self.limit:
                self._values, self._version = {}, version
            self._values[key] = value
        return value


def note_changed(session: Session, *tables: str) -> None:
    """Count a change made with a bulk statement (which the ORM does not track) at the commit."""
    session.info["changed_tables"] = session.info.get("changed_tables", set()) | set(tables)


COUNTED_AS = {"applied_arguments": "stacks"}
"""A table whose rows are part of another's views, and counts as a change of that one."""


def _note_changed_tables(session: Session, _flush_context: Any) -> None:
    tables = {getattr(obj, "__tablename__", "") for obj in (*session.new, *session.dirty, *session.deleted)}
    watched = {COUNTED_AS.get(table, table) for table in tables}.intersection(Database.WATCHED)
    if watched:
        session.info["changed_tables"] = session.info.get("changed_tables", set()) | watched


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
