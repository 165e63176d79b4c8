"""Policies: what a tenant's runs are checked against (the project's pack, as configured for it)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from policies import secure_defaults
from service import policy
from service.deps import DbDep, PrincipalDep
from service.schemas import COMMON_ERRORS, PolicyList, PolicyRead

router = APIRouter(prefix="/v1/policies", tags=["policies"], responses=COMMON_ERRORS)


@router.get("", response_model=PolicyList)
async def list_policies(principal: PrincipalDep, db: DbDep) -> PolicyList:
    """Every policy of the project's pack with the level it has for the caller's runs."""
    def read() -> PolicyList:
        with db.session() as session:
            settings = policy.for_tenant(session, principal.tenant)
        levels = settings.levels()
        return PolicyList(pack=secure_defaults.PACK_NAME, extra_packs=settings.packs, items=[
            PolicyRead(name=p.name, description=p.description, level=levels[p.name],  # type: ignore[arg-type]
                       project_level=p.level)  # type: ignore[arg-type]
            for p in secure_defaults.POLICIES])

    return await run_in_threadpool(read)
