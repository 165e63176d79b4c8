"""What ``GET /v1/stacks``, ``GET /v1/stacks/{name}`` and ``GET /v1/runs/{id}`` show, kept as
ready JSON (stacks per tenant, runs one by one).

A view is rebuilt (one query) only after a stack or run changed: the database counts
committed changes, and a view noted with an older count is not served. Reads therefore
cost no database round trip while runs stream events, which is what keeps them fast next
to busy runs (and cheap for clients polling a run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from service.db import AppliedArguments, Database, Remembered, Run, StackRecord
from service.schemas import SECRET_MARK, ErrorBody, RunRead, RunRef, StackList, StackRead

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
    return StackRead(
        name=stack.name, case=stack.case, target=stack.target, pulumi_stack=stack.pulumi_stack,  # type: ignore[arg-type]
        arguments=_shown(stack.args, stack.secret_arg_names),
        applied_arguments=_shown(applied.args, applied.secret_arg_names) if applied is not None else None,
        status=stack.status, outputs=stack.outputs, resource_count=stack.resource_count,
        last_run=RunRef(id=last_run.id, kind=last_run.kind, status=last_run.status) if last_run else None,  # type: ignore[arg-type]
        created_at=stack.created_at, updated_at=stack.updated_at)


@dataclass(frozen=True)
class TenantStacks:
    items: list[StackRead]
    by_name: dict[str, bytes]
    listing: bytes


class StackViews:
    """Each tenant's stacks, kept while no stack or run changed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._tenants: Remembered[TenantStacks] = Remembered(db, TABLES)

    def current(self, tenant: str) -> TenantStacks | None:
        """The tenant's views if nothing changed since they were built (no database access)."""
        return self._tenants.get(tenant)[1]

    def build(self, tenant: str) -> TenantStacks:
        return self._tenants.load(tenant, lambda: self._read(tenant))

    def _read(self, tenant: str) -> TenantStacks:
        with self.db.session() as session:
            rows = session.execute(
                select(StackRecord, Run, AppliedArguments).outerjoin(Run, Run.id == StackRecord.last_run_id)
                .outerjoin(AppliedArguments, AppliedArguments.pulumi_stack == StackRecord.pulumi_stack)
                .where(StackRecord.tenant_id == tenant).order_by(StackRecord.name)).all()
            items = [stack_read(stack, run, applied) for stack, run, applied in rows]
        return TenantStacks(items=items, by_name={item.name: item.model_dump_json().encode() for item in items},
                            listing=StackList(items=items).model_dump_json().encode())


class RunViews:
    """Single runs as ready JSON with their tenant (None for no such run), kept while no run changed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._runs: Remembered[tuple[str, bytes] | None] = Remembered(db, ("runs",), limit=4096)

    def current(self, run_id: str) -> tuple[bool, tuple[str, bytes] | None]:
        """(True, (tenant, JSON) or None) if kept and current; (False, None) if not (no database access)."""
        return self._runs.get(run_id)

    def build(self, run_id: str) -> tuple[str, bytes] | None:
        """(tenant, JSON) of the run, or None if there is no such run."""
        return self._runs.load(run_id, lambda: self._read(run_id))

    def _read(self, run_id: str) -> tuple[str, bytes] | None:
        with self.db.session() as session:
            run = session.get(Run, run_id)
            return (run.tenant_id, run_read(run).model_dump_json().encode()) if run is not None else None
