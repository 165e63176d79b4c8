"""What ``GET /v1/stacks``, ``GET /v1/stacks/{name}`` and ``GET /v1/runs/{id}`` show, as ready JSON.

Stacks are read per request, one indexed query each (a stack, or a page of the list). Runs,
which clients poll, are kept one by one and rebuilt only after a run changed: the database
counts committed changes (on every node: see ``Database``), and a view noted with an older
count is not served.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from service import pages
from service.db import AppliedArguments, Database, Remembered, Run, StackRecord
from service.schemas import SECRET_MARK, ErrorBody, RunRead, RunRef, StackRead

TABLES = ("stacks", "runs")


def run_read(run: Run) -> RunRead:
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
    error = ErrorBody(error=run.error_type, detail=run.error_detail) if run.error_type else None
    return RunRead(id=run.id, stack=run.stack_name, kind=run.kind, status=run.status,  # type: ignore[arg-type]
                   queued_at=run.queued_at, started_at=run.started_at, finished_at=run.finished_at,
                   duration_seconds=duration, summary=run.summary or {}, error=error,
                   node=run.node_id, recovered=bool(run.recovered))


def _shown(args: dict[str, Any], secret_names: list[str]) -> dict[str, Any]:
    return {**args, **{name: SECRET_MARK for name in secret_names}}


def stack_read(stack: StackRecord, last_run: Run | None, applied: AppliedArguments | None = None) -> StackRead:
    return shown_read(stack.name, stack.case, stack.target, stack.pulumi_stack, stack.args, stack.secret_arg_names,
                      stack.status, stack.outputs, stack.resource_count, stack.created_at, stack.updated_at,
                      *((last_run.id, last_run.kind, last_run.status) if last_run else (None, None, None)),
                      *((applied.args, applied.secret_arg_names) if applied is not None else (None, None)))


def shown_read(name: str, case: str, target: str, pulumi_stack: str, args: dict[str, Any], secret_arg_names: list[str],
               status: str, outputs: dict[str, Any], resource_count: int, created_at: dt.datetime,
               updated_at: dt.datetime, run_id: str | None, run_kind: str | None, run_status: str | None,
               applied_args: dict[str, Any] | None, applied_secret_arg_names: list[str] | None) -> StackRead:
    """A stack's view from what it shows (in ``SHOWN``'s order)."""
    return StackRead(
        name=name, case=case, target=target, pulumi_stack=pulumi_stack,  # type: ignore[arg-type]
        arguments=_shown(args, secret_arg_names),
        applied_arguments=_shown(applied_args, applied_secret_arg_names or []) if applied_args is not None else None,
        status=status, outputs=outputs, resource_count=resource_count,
        last_run=RunRef(id=run_id, kind=run_kind, status=run_status) if run_id else None,  # type: ignore[arg-type]
        created_at=created_at, updated_at=updated_at)


def page_json(items: list[bytes], following: str | None) -> bytes:
    """A page of the stack list as the API answers it: the kept items, and the next page's cursor."""
    cursor = json.dumps(pages.encode([following]) if following is not None else None)
    return b'{"items":[' + b",".join(items) + b'],"next_cursor":' + cursor.encode() + b"}"


def _text(column: Any, label: str) -> Any:
    return cast(column, Text).label(label)


SHOWN = (StackRecord.name, StackRecord.case, StackRecord.target, StackRecord.pulumi_stack,
         _text(StackRecord.args, "args"), _text(StackRecord.secret_arg_names, "secret_arg_names"),
         StackRecord.status, _text(StackRecord.outputs, "outputs"), StackRecord.resource_count,
         StackRecord.created_at, StackRecord.updated_at, Run.id, Run.kind, Run.status,
         _text(AppliedArguments.args, "applied_args"), _text(AppliedArguments.secret_arg_names, "applied_secrets"))
"""Every column a stack's view shows (``shown_read``'s arguments, in order), JSON as the text the
database holds: a row is read without parsing JSON and can be a key, and equal rows show equal views."""
NAME = 0
JSON_TEXT = (4, 5, 7, 14, 15)  # where SHOWN has JSON as text


def _render(row: tuple[Any, ...]) -> bytes:
    values = [json.loads(v) if i in JSON_TEXT and v is not None else v for i, v in enumerate(row)]
    return shown_read(*values).model_dump_json().encode()


class StackViews:
    """A tenant's stacks: one stack by its unique backend name, or one page of the list by name,
    each one indexed query (as cheap with ten thousand stacks as with ten). Each answer is kept
    while no stack or run changed (on any node: ``Database.version``), so reads between changes
    cost no query on SQLite and one tiny one on PostgreSQL.

    After a change, a page is read again as the columns its views show (``SHOWN``), and a stack's
    view is rendered only if its row is not one rendered before: a run changes one stack of a
    page, and the other 99 views are reused (loading a page of stacks through the ORM and
    rendering it whole took about 7 ms of CPU, under the GIL every reader shares)."""

    RENDERED_LIMIT = 20_000

    def __init__(self, db: Database) -> None:
        self.db = db
        self._kept: Remembered[Any] = Remembered(db, TABLES, limit=20_000)
        self._rendered: dict[tuple[Any, ...], bytes] = {}  # a row of SHOWN -> its view's JSON

    def kept(self, key: str) -> tuple[bool, Any]:
        """(True, answer) if the answer for ``key`` is kept and current, else (False, None). Never
        touches the database (callable on the event loop); on a fleet's node nothing is current here."""
        return self._kept.get(key)

    def version(self) -> tuple[int, ...]:
        """The change count the kept answers are checked against (as the database counts it)."""
        return self.db.version(*TABLES)

    @staticmethod
    def one_key(tenant: str, name: str) -> str:
        return f"{tenant}\0{name}"

    @staticmethod
    def page_key(tenant: str, limit: int, after: str | None, case: str | None, status: str | None) -> str:
        return json.dumps([tenant, limit, after, case, status])

    def one(self, tenant: str, name: str) -> bytes | None:
        """The stack's JSON, or None if the tenant has no such stack."""
        return self._kept.load(self.one_key(tenant, name), lambda: self._one(tenant, name))

    def page(self, tenant: str, *, limit: int, after: str | None = None, case: str | None = None,
             status: str | None = None) -> tuple[list[bytes], str | None]:
        """Up to ``limit`` stacks after the name ``after``, by name (filtered by case and status),
        and the name the next page starts after (None on the last page)."""
        return self._kept.load(self.page_key(tenant, limit, after, case, status),
                               lambda: self._page(tenant, limit=limit, after=after, case=case, status=status))

    @staticmethod
    def _joined(query: Any) -> Any:
        return (query.outerjoin(Run, Run.id == StackRecord.last_run_id)
                .outerjoin(AppliedArguments, AppliedArguments.pulumi_stack == StackRecord.pulumi_stack))

    def _one(self, tenant: str, name: str) -> bytes | None:
        with self.db.session() as session:
            found = self._views(session, [StackRecord.pulumi_stack == f"{tenant}.{name}",
                                          StackRecord.tenant_id == tenant], limit=1)
        return found[0][1] if found else None

    def _page(self, tenant: str, *, limit: int, after: str | None, case: str | None,
              status: str | None) -> tuple[list[bytes], str | None]:
        where = [StackRecord.tenant_id == tenant]
        if after is not None:
            where.append(StackRecord.name > after)
        if case is not None:
            where.append(StackRecord.case == case)
        if status is not None:
            where.append(StackRecord.status == status)
        with self.db.session() as session:
            found = self._views(session, where, limit=limit + 1)
        return [view for _, view in found[:limit]], found[limit - 1][0] if len(found) > limit else None

    def _views(self, session: Session, where: list[Any], *, limit: int) -> list[tuple[str, bytes]]:
        """(name, view) of the first ``limit`` stacks matching ``where``, by name; a view is rendered
        only for a row not rendered before."""
        rows = session.execute(self._joined(select(*SHOWN).select_from(StackRecord)).where(*where)
                               .order_by(StackRecord.name).limit(limit))
        found = []
        for row in map(tuple, rows):
            view = self._rendered.get(row)
            if view is None:
                if len(self._rendered) >= self.RENDERED_LIMIT:
                    self._rendered = {}
                view = self._rendered[row] = _render(row)
            found.append((row[NAME], view))
        return found


class RunViews:
    """Single runs as ready JSON with their tenant (None for no such run), kept while no run changed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._runs: Remembered[tuple[str, bytes] | None] = Remembered(db, ("runs",), limit=4096)

    def current(self, run_id: str) -> tuple[bool, tuple[str, bytes] | None]:
        """(True, (tenant, JSON) or None) if kept and current; (False, None) if not (never touches the
        database: on a fleet's node nothing is current here)."""
        return self._runs.get(run_id)

    def build(self, run_id: str) -> tuple[str, bytes] | None:
        """(tenant, JSON) of the run, or None if there is no such run."""
        return self._runs.load(run_id, lambda: self._read(run_id))

    def _read(self, run_id: str) -> tuple[str, bytes] | None:
        with self.db.session() as session:
            run = session.get(Run, run_id)
            return (run.tenant_id, run_read(run).model_dump_json().encode()) if run is not None else None
