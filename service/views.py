"""What ``GET /v1/stacks`` and ``GET /v1/stacks/{name}`` show, kept per tenant as ready JSON.

A tenant's views are rebuilt (one query) only after a stack or run changed: the database
counts committed changes, and views noted with an older count are not served. Reads
therefore cost no database round trip while runs stream events, which is what keeps them
fast next to busy runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from service.db import Database, Run, StackRecord
from service.schemas import SECRET_MARK, RunRef, StackList, StackRead

TABLES = ("stacks", "runs")


def stack_read(stack: StackRecord, last_run: Run | None) -> StackRead:
    arguments = {**stack.args, **{name: SECRET_MARK for name in stack.secret_arg_names}}
    return StackRead(
        name=stack.name, case=stack.case, target=stack.target, pulumi_stack=stack.pulumi_stack,  # type: ignore[arg-type]
        arguments=arguments, status=stack.status, outputs=stack.outputs, resource_count=stack.resource_count,
        last_run=RunRef(id=last_run.id, kind=last_run.kind, status=last_run.status) if last_run else None,  # type: ignore[arg-type]
        created_at=stack.created_at, updated_at=stack.updated_at)


@dataclass(frozen=True)
class TenantStacks:
    version: tuple[int, ...]
    items: list[StackRead]
    by_name: dict[str, bytes]
    listing: bytes


class StackViews:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._tenants: dict[str, TenantStacks] = {}

    def current(self, tenant: str) -> TenantStacks | None:
        """The tenant's views if nothing changed since they were built (no database access)."""
        views = self._tenants.get(tenant)
        return views if views is not None and views.version == self.db.version(*TABLES) else None

    def build(self, tenant: str) -> TenantStacks:
        version = self.db.version(*TABLES)  # noted before reading: a later change makes these stale
        with self.db.session() as session:
            rows = session.execute(
                select(StackRecord, Run).outerjoin(Run, Run.id == StackRecord.last_run_id)
                .where(StackRecord.tenant_id == tenant).order_by(StackRecord.name)).all()
            items = [stack_read(stack, run) for stack, run in rows]
        views = TenantStacks(version=version, items=items,
                             by_name={item.name: item.model_dump_json().encode() for item in items},
                             listing=StackList(items=items).model_dump_json().encode())
        self._tenants[tenant] = views
        return views
