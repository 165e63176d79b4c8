"""Runs: read, follow their events (server-sent events, replayed from the start), cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from sqlalchemy import and_, or_, select
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from service import pages
from service.db import Database, Run, RunEvent
from service.deps import PrincipalDep, RunnerDep, RunViewsDep
from service.errors import RunFinished, RunNotFound
from service.runner import FINISHED
from service.schemas import COMMON_ERRORS, ErrorBody, RunList, RunRead, RunStatus
from service.views import run_read

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses={**COMMON_ERRORS})
RunId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="The run's id")]
POLL_SECONDS = 0.2


def _find(db: Database, tenant: str, run_id: str) -> Run:
    with db.session() as session:
        run = session.get(Run, run_id)
        if run is None or run.tenant_id != tenant:
            raise RunNotFound(f"no run {run_id!r}")
        return run


@router.get("", response_model=RunList, responses={422: {"model": ErrorBody}})
def list_runs(principal: PrincipalDep, runner: RunnerDep, limit: pages.Limit = pages.DEFAULT_LIMIT,
              cursor: pages.Cursor = None,
              status: Annotated[RunStatus | None, Query(description="Only runs in this status")] = None) -> RunList:
    """The tenant's runs, newest first, a page at a time."""
    before = pages.decode(cursor, 2)
    with runner.db.session() as session:
        query = select(Run).where(Run.tenant_id == principal.tenant)
        if status is not None:
            query = query.where(Run.status == status)
        if before is not None:
            when = pages.moment(before[0])
            query = query.where(or_(Run.queued_at < when, and_(Run.queued_at == when, Run.id < before[1])))
        runs = list(session.scalars(query.order_by(Run.queued_at.desc(), Run.id.desc()).limit(limit + 1)))
        following = pages.encode([runs[limit - 1].queued_at.isoformat(), runs[limit - 1].id]) \
            if len(runs) > limit else None
        return RunList(items=[run_read(r) for r in runs[:limit]], next_cursor=following)


@router.get("/{run_id}", response_model=RunRead, responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def read_run(run_id: RunId, principal: PrincipalDep, views: RunViewsDep) -> Response:
    known, found = views.current(run_id)
    if not known:
        found = await run_in_threadpool(views.build, run_id)
    if found is None or found[0] != principal.tenant:
        raise RunNotFound(f"no run {run_id!r}")
    return Response(found[1], media_type="application/json")


@router.post("/{run_id}/cancel", response_model=RunRead,
             responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def cancel_run(run_id: RunId, principal: PrincipalDep, runner: RunnerDep) -> RunRead:
    """A queued run is dropped; a running one is stopped cleanly (state saved, stack unlocked)."""
    run = _find(runner.db, principal.tenant, run_id)
    if run.status in FINISHED:
        raise RunFinished(f"the run has already finished ({run.status})")
    runner.cancel(run_id)
    return run_read(_find(runner.db, principal.tenant, run_id))


@router.get("/{run_id}/events", responses={
    200: {"content": {"text/event-stream": {}}, "description": "The run's engine events, then an `end` event"},
    404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def stream_run_events(run_id: RunId, request: Request, principal: PrincipalDep, runner: RunnerDep,
                            last_event_id: Annotated[str | None, Header()] = None) -> EventSourceResponse:
    """Server-sent events: every stored event from the start (or after ``Last-Event-ID``),
    then live ones as they happen, then one ``end`` event with the run's final status."""
    _find(runner.db, principal.tenant, run_id)
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    return EventSourceResponse(_events(runner.db, run_id, start, request), ping=15)


async def _events(db: Database, run_id: str, after: int, request: Request) -> AsyncIterator[dict[str, Any]]:
    last = after
    while True:
        rows, status = await asyncio.to_thread(_fetch, db, run_id, last)
        for seq, data in rows:
            last = seq
            yield {"id": str(seq), "event": data.get("type", "event"), "data": json.dumps(data)}
        if not rows:
            if status in FINISHED:
                yield {"event": "end", "data": json.dumps({"status": status})}
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_SECONDS)


def _fetch(db: Database, run_id: str, after: int) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    with db.session() as session:
        status = session.scalar(select(Run.status).where(Run.id == run_id)) or "failed"
        rows = session.execute(select(RunEvent.seq, RunEvent.data).where(RunEvent.run_id == run_id,
                                                                          RunEvent.seq > after)
                               .order_by(RunEvent.seq).limit(500)).all()
        return [(seq, data) for seq, data in rows], status
