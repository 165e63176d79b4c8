"""Tenants and their tokens (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from service.auth import issue_token
from service.deps import AdminDep, DbDep
from service.schemas import COMMON_ERRORS, ErrorBody, TenantCreate, TokenRead

router = APIRouter(prefix="/v1/tenants", tags=["tenants"],
                   responses={**COMMON_ERRORS, 403: {"model": ErrorBody}})


@router.post("", response_model=TokenRead, status_code=status.HTTP_201_CREATED)
def create_tenant_token(body: TenantCreate, admin: AdminDep, db: DbDep) -> TokenRead:
    """Issue a token for a tenant (created if new). The token is shown once."""
    return TokenRead(tenant=body.name, token=issue_token(db, body.name))
