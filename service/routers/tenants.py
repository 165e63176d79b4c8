"""Tenants, their tokens and their AWS identities (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from starlette.concurrency import run_in_threadpool

from service import identities, policy
from service.auth import issue_token
from service.db import Tenant, TenantAwsIdentity, TenantPolicies, utcnow
from service.deps import AdminDep, DbDep
from service.errors import AwsIdentityNotSet, TenantNotFound
from service.schemas import (
    COMMON_ERRORS,
    TENANT_NAME,
    AwsIdentityRead,
    AwsIdentityWrite,
    ErrorBody,
    PolicySettingsRead,
    PolicySettingsWrite,
    TenantCreate,
    TokenRead,
)

router = APIRouter(prefix="/v1/tenants", tags=["tenants"],
                   responses={**COMMON_ERRORS, 403: {"model": ErrorBody}})
TenantName = Annotated[str, Path(pattern=TENANT_NAME)]


@router.post("", response_model=TokenRead, status_code=status.HTTP_201_CREATED)
def create_tenant_token(body: TenantCreate, admin: AdminDep, db: DbDep) -> TokenRead:
    """Issue a token for a tenant (created if new). The token is shown once."""
    return TokenRead(tenant=body.name, token=issue_token(db, body.name))


def _read(tenant: str, row: TenantAwsIdentity) -> AwsIdentityRead:
    identity = identities.AwsIdentity(row.role_arn, row.external_id)
    return AwsIdentityRead(tenant=tenant, role_arn=row.role_arn, account=identity.account,
                           external_id_set=bool(row.external_id), sandbox_account=identities.sandbox_account(tenant))


@router.put("/{tenant}/aws-identity", response_model=AwsIdentityRead, responses={404: {"model": ErrorBody}})
def set_aws_identity(tenant: TenantName, body: AwsIdentityWrite, admin: AdminDep, db: DbDep) -> AwsIdentityRead:
    """Set the IAM role (and external id) the tenant's ``aws`` stacks are deployed with. Its
    trust policy must let the service's own identity assume it; the service's credentials are
    used for nothing else. The next run of each of the tenant's aws stacks uses it."""
    with db.session() as session:
        if session.get(Tenant, tenant) is None:
            raise TenantNotFound(f"no tenant named {tenant!r}")
        row = session.get(TenantAwsIdentity, tenant)
        if row is None:
            row = TenantAwsIdentity(tenant_id=tenant, role_arn=body.role_arn)
            session.add(row)
        row.role_arn, row.external_id, row.updated_at = body.role_arn, body.external_id, utcnow()
        return _read(tenant, row)


@router.get("/{tenant}/aws-identity", response_model=AwsIdentityRead, responses={404: {"model": ErrorBody}})
async def read_aws_identity(tenant: TenantName, admin: AdminDep, db: DbDep) -> AwsIdentityRead:
    def read() -> AwsIdentityRead:
        with db.session() as session:
            row = session.get(TenantAwsIdentity, tenant)
            if row is None:
                raise AwsIdentityNotSet(f"tenant {tenant!r} has no AWS role")
            return _read(tenant, row)

    return await run_in_threadpool(read)


@router.delete("/{tenant}/aws-identity", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"model": ErrorBody}})
def remove_aws_identity(tenant: TenantName, admin: AdminDep, db: DbDep) -> Response:
    """Remove the tenant's role: its aws stacks then accept no change until one is set again."""
    with db.session() as session:
        row = session.get(TenantAwsIdentity, tenant)
        if row is None:
            raise AwsIdentityNotSet(f"tenant {tenant!r} has no AWS role")
        session.delete(row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{tenant}/policies", response_model=PolicySettingsRead,
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def set_policies(tenant: TenantName, body: PolicySettingsWrite, admin: AdminDep, db: DbDep) -> PolicySettingsRead:
    """Configure the project's pack for a tenant's runs and add packs of your own. Checked before
    anything is kept: every problem is listed (422 ``InvalidPolicyConfig``). The next run uses it."""
    settings = policy.checked(dict(body.config), list(body.packs))
    with db.session() as session:
        if session.get(Tenant, tenant) is None:
            raise TenantNotFound(f"no tenant named {tenant!r}")
        row = session.get(TenantPolicies, tenant)
        if row is None:
            row = TenantPolicies(tenant_id=tenant)
            session.add(row)
        row.config, row.packs, row.updated_at = settings.config, settings.packs, utcnow()
    return PolicySettingsRead(tenant=tenant, config=settings.config, packs=settings.packs)


@router.get("/{tenant}/policies", response_model=PolicySettingsRead)
async def read_policies(tenant: TenantName, admin: AdminDep, db: DbDep) -> PolicySettingsRead:
    def read() -> PolicySettingsRead:
        with db.session() as session:
            settings = policy.for_tenant(session, tenant)
        return PolicySettingsRead(tenant=tenant, config=settings.config, packs=settings.packs)

    return await run_in_threadpool(read)
