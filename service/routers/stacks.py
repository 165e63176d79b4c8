"""Stacks: create (an ``up`` run), read, list, update, preview, refresh, delete."""

from __future__ import annotations

from typing import Annotated, Any, cast

import boto3
from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from components import ComponentArgsError, UnknownCaseError, get_case
from components.catalog import BASELINE, needing
from service import identities, pages
from service.db import Run, StackRecord, Tenant
from service.deps import PrincipalDep, RunnerDep, SettingsDep, ViewsDep
from service.errors import (
    AccountBaselineExists,
    AccountBaselineInUse,
    DeletionProtected,
    InvalidStackConfig,
    MissingCredentials,
    StackBeingDeleted,
    StackExists,
    StackNotFound,
    TargetChange,
    UnknownCase,
)
from service.schemas import (
    COMMON_ERRORS,
    STACK_NAME,
    ErrorBody,
    RunList,
    RunRead,
    StackCreate,
    StackList,
    StackRead,
    StackUpdate,
)
from service.views import page_json, run_read

router = APIRouter(prefix="/v1/stacks", tags=["stacks"], responses={
    **COMMON_ERRORS, 503: {"model": ErrorBody, "description": "The Pulumi toolchain is missing"}})
StackName = Annotated[str, Path(pattern=STACK_NAME, description="The stack's name")]
JSON = "application/json"
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}
INVALID: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody}}


def _find(session: Session, tenant: str, name: str, *, lock: bool = False) -> StackRecord:
    """The tenant's stack; with ``lock``, its row is locked until the commit (PostgreSQL: acceptances
    of one stack on every node take their turn, in the database's order)."""
    query = select(StackRecord).where(StackRecord.tenant_id == tenant, StackRecord.name == name)
    stack = session.scalar(query.with_for_update() if lock else query)
    if stack is None:
        raise StackNotFound(f"no stack named {name!r}")
    return stack


def _changeable(session: Session, tenant: str, name: str) -> StackRecord:
    """The stack, if it accepts another run: not while a destroy of it is queued or running (a
    change queued behind it would re-create the stack outside the API once it is gone)."""
    stack = _find(session, tenant, name, lock=True)
    deleting = session.scalar(select(Run.id).where(Run.pulumi_stack == stack.pulumi_stack, Run.kind == "destroy",
                                                   Run.status.in_(("queued", "running"))).limit(1))
    if deleting is not None:
        raise StackBeingDeleted(f"stack {name!r} is being deleted (run {deleting}); it accepts no other run")
    return stack


def _validate(case_name: str, args: dict[str, Any], secrets: dict[str, Any], known_secrets: list[str]) -> None:
    """Check the arguments with the case's own typed arguments before anything is queued."""
    try:
        case = get_case(case_name)
    except UnknownCaseError as exc:
        raise UnknownCase(str(exc)) from None
    overlap = sorted(set(args) & set(secrets))
    if overlap:
        raise InvalidStackConfig([f"{k}: given both as an argument and as a secret argument" for k in overlap])
    try:
        case.parse_args({**args, **secrets})
    except ComponentArgsError as exc:
        # Secret arguments stored earlier are not known here: only the stack's config holds them.
        problems = [p for p in exc.problems if not (p.split(":", 1)[0] in known_secrets and "Field required" in p)]
        if problems:
            raise InvalidStackConfig(problems) from None


def _check_target(session: Session, tenant: str, target: str, args: dict[str, Any]) -> None:
    """The stack can be deployed: for ``aws``, the service can assume the tenant's own role; and
    no argument names a resource of another account than the one the stack is made in."""
    if target == "aws" and boto3.Session().get_credentials() is None:
        raise MissingCredentials("no AWS credentials found for the aws target (environment, profile or role)")
    identity = identities.for_target(session, tenant, target)
    problems = identities.foreign_resources(args, identity.account)
    if problems:
        raise InvalidStackConfig(problems)


def _tenant_stacks(session: Session, tenant: str, target: str, cases: tuple[str, ...]) -> list[str]:
    """The names of the tenant's stacks of ``cases`` on ``target``, once the tenant's row is locked (so
    that acceptances touching its account baseline take their turn on every node)."""
    session.scalar(select(Tenant.id).where(Tenant.id == tenant).with_for_update())
    return list(session.scalars(select(StackRecord.name).where(
        StackRecord.tenant_id == tenant, StackRecord.target == target, StackRecord.case.in_(cases))
        .order_by(StackRecord.name)))


def _check_baseline_create(session: Session, tenant: str, target: str) -> None:
    """One account baseline per tenant and target: the settings it owns are one per account and region,
    and destroying a second owner would reset them under the first."""
    owners = _tenant_stacks(session, tenant, target, (BASELINE,))
    if owners:
        raise AccountBaselineExists(f"stack {owners[0]!r} is already this tenant's account baseline for target "
                                    f"{target!r} (one per account and region)")


def _check_baseline_destroy(session: Session, tenant: str, stack: StackRecord) -> None:
    """An account baseline is not destroyed while stacks that need it exist: destroying it resets the
    account's API Gateway logging role, and their APIs would stop writing logs."""
    users = _tenant_stacks(session, tenant, stack.target, needing(BASELINE))
    if users:
        raise AccountBaselineInUse(f"stack {stack.name!r} is the account baseline of {_listing(users)}: delete those "
                                   "first (their REST APIs log through the role it sets)")
    shared = (stack.outputs or {}).get("security_headers_policy_id")
    if shared:
        attaching = [name for name, args in session.execute(select(StackRecord.name, StackRecord.args).where(
            StackRecord.tenant_id == tenant, StackRecord.target == stack.target, StackRecord.name != stack.name)
            .order_by(StackRecord.name)) if (args or {}).get("response_headers_policy_id") == shared]
        if attaching:
            raise AccountBaselineInUse(f"stack {stack.name!r} makes the response headers policy that "
                                       f"{_listing(attaching)} attach (response_headers_policy_id): move them off it "
                                       "or delete them first")


def _listing(names: list[str], shown: int = 5) -> str:
    return ", ".join(repr(n) for n in names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _queue(session: Session, runner: Any, tenant: str, stack: StackRecord, kind: str,
           secrets: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> RunRead:
    """Queue a run of ``kind`` for ``stack`` with the stack's current arguments."""
    run = runner.enqueue(session, tenant_id=tenant, stack=stack, kind=kind, params={**_params(stack), **(extra or {})},
                         secret_values=secrets)
    session.flush()
    return run_read(run)


def _params(stack: StackRecord) -> dict[str, Any]:
    return {"case": stack.case, "target": stack.target, "args": dict(stack.args),
            "secret_arg_names": list(stack.secret_arg_names)}


@router.post("", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED,
             responses={**INVALID, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
def create_stack(body: StackCreate, principal: PrincipalDep, runner: RunnerDep, settings: SettingsDep) -> RunRead:
    """Validate, register the stack and start its first ``up`` run."""
    target = body.target or settings.default_target
    _validate(body.case, body.arguments, body.secret_arguments, [])
    exists = StackExists(f"a stack named {body.name!r} already exists")
    try:
        with runner.admission, runner.db.session() as session:
            _check_target(session, principal.tenant, target, dict(body.arguments))
            if body.case == BASELINE:
                _check_baseline_create(session, principal.tenant, target)
            if session.scalar(select(StackRecord.id).where(StackRecord.tenant_id == principal.tenant,
                                                           StackRecord.name == body.name)) is not None:
                raise exists
            stack = StackRecord(tenant_id=principal.tenant, name=body.name,
                                pulumi_stack=f"{principal.tenant}.{body.name}", case=body.case, target=target,
                                args=dict(body.arguments), secret_arg_names=sorted(body.secret_arguments),
                                status="queued")
            session.add(stack)
            session.flush()
            return _queue(session, runner, principal.tenant, stack, "up", dict(body.secret_arguments))
    except IntegrityError:  # the same name created at the same moment on another node
        raise exists from None


@router.get("", response_model=StackList, responses=INVALID)
async def list_stacks(principal: PrincipalDep, views: ViewsDep,
                      case: Annotated[str | None, Query(max_length=64)] = None,
                      status_: Annotated[str | None, Query(alias="status", max_length=32)] = None,
                      limit: pages.Limit = pages.DEFAULT_LIMIT, cursor: pages.Cursor = None) -> Response:
    """The tenant's stacks by name, a page at a time."""
    after = pages.decode(cursor, 1)
    start = after[0] if after else None
    known, kept = views.kept(views.page_key(principal.tenant, limit, start, case, status_))
    page: tuple[list[bytes], str | None] = cast(tuple[list[bytes], str | None], kept) if known else await run_in_threadpool(
        views.page, principal.tenant, limit=limit, after=start, case=case, status=status_)
    return Response(page_json(*page), media_type=JSON)


@router.get("/{name}", response_model=StackRead, responses={**NOT_FOUND, **INVALID})
async def read_stack(name: StackName, principal: PrincipalDep, views: ViewsDep) -> Response:
    known, body = views.kept(views.one_key(principal.tenant, name))
    if not known:
        body = await run_in_threadpool(views.one, principal.tenant, name)
    if body is None:
        raise StackNotFound(f"no stack named {name!r}")
    return Response(body, media_type=JSON)


@router.patch("/{name}", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED,
              responses={**NOT_FOUND, **INVALID, 409: {"model": ErrorBody}})
def update_stack(name: StackName, body: StackUpdate, principal: PrincipalDep, runner: RunnerDep) -> RunRead:
    """Merge new arguments into the stack's and start an ``update`` run (queued behind any
    run already waiting on this stack)."""
    with runner.admission, runner.db.session() as session:
        stack = _changeable(session, principal.tenant, name)
        if body.target is not None and body.target != stack.target:
            raise TargetChange(f"the stack's target is {stack.target!r}; it cannot change to {body.target!r}")
        args = {k: v for k, v in {**stack.args, **body.arguments}.items() if v is not None}
        for key in body.secret_arguments:
            args.pop(key, None)
        secret_names = sorted((set(stack.secret_arg_names) - set(body.arguments)) | set(body.secret_arguments))
        _validate(stack.case, args, dict(body.secret_arguments), secret_names)
        _check_target(session, principal.tenant, stack.target, args)
        stack.args, stack.secret_arg_names = args, secret_names
        result = _queue(session, runner, principal.tenant, stack, "update", dict(body.secret_arguments))
    return result


def _simple_run(name: str, kind: str, principal: Any, runner: Any, *, delete_data: bool = False) -> RunRead:
    with runner.admission, runner.db.session() as session:
        stack = _changeable(session, principal.tenant, name)
        _check_target(session, principal.tenant, stack.target, dict(stack.args))
        if kind == "destroy" and not delete_data and get_case(stack.case).protects_data \
                and stack.args.get("deletion_protection", True) is not False:
            raise DeletionProtected(f"stack {name!r} protects its data (tables, user pools, buckets) against deletion: delete it "
                                    "with ?delete_data=true (or set the argument deletion_protection to false first)")
        if kind == "destroy" and stack.case == BASELINE:
            _check_baseline_destroy(session, principal.tenant, stack)
        result = _queue(session, runner, principal.tenant, stack, kind, extra={"delete_data": True} if delete_data else None)
    return result


@router.post("/{name}/preview", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED,
             responses={**NOT_FOUND, **INVALID})
def preview_stack(name: StackName, principal: PrincipalDep, runner: RunnerDep) -> RunRead:
    """A run that reports the planned changes: counts per operation and the resources affected."""
    return _simple_run(name, "preview", principal, runner)


@router.post("/{name}/refresh", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED,
             responses={**NOT_FOUND, **INVALID})
def refresh_stack(name: StackName, principal: PrincipalDep, runner: RunnerDep) -> RunRead:
    """Drift detection: the run's summary lists the resources that drifted."""
    return _simple_run(name, "refresh", principal, runner)


@router.delete("/{name}", response_model=RunRead, status_code=status.HTTP_202_ACCEPTED,
               responses={**NOT_FOUND, **INVALID, 409: {"model": ErrorBody}})
def delete_stack(name: StackName, principal: PrincipalDep, runner: RunnerDep, delete_data: bool = False) -> RunRead:
    """Destroy the stack's resources, then remove the stack. A case's tables, user pools and buckets
    are protected against deletion: ``delete_data=true`` turns that off first (their data is lost)."""
    return _simple_run(name, "destroy", principal, runner, delete_data=delete_data)


@router.get("/{name}/runs", response_model=RunList, responses={**NOT_FOUND, **INVALID})
def list_stack_runs(name: StackName, principal: PrincipalDep, runner: RunnerDep,
                    limit: pages.Limit = pages.DEFAULT_LIMIT, cursor: pages.Cursor = None) -> RunList:
    """The stack's runs, oldest first, a page at a time."""
    after = pages.decode(cursor, 2)
    with runner.db.session() as session:
        stack = _find(session, principal.tenant, name)
        query = select(Run).where(Run.pulumi_stack == stack.pulumi_stack)
        if after is not None:
            when = pages.moment(after[0])
            query = query.where(or_(Run.queued_at > when, and_(Run.queued_at == when, Run.id > after[1])))
        runs = list(session.scalars(query.order_by(Run.queued_at, Run.id).limit(limit + 1)))
        following = pages.encode([runs[limit - 1].queued_at.isoformat(), runs[limit - 1].id]) \
            if len(runs) > limit else None
        return RunList(items=[run_read(r) for r in runs[:limit]], next_cursor=following)
