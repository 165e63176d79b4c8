"""The catalog of cases."""

from __future__ import annotations

from fastapi import APIRouter

from components import CASES, Case, UnknownCaseError, get_case
from service.deps import PrincipalDep
from service.errors import UnknownCase
from service.schemas import COMMON_ERRORS, CaseList, CaseRead, ErrorBody

router = APIRouter(prefix="/v1/cases", tags=["cases"], responses={**COMMON_ERRORS})


def case_read(case: Case) -> CaseRead:
    return CaseRead(name=case.name, description=case.description, outputs=list(case.outputs),
                    example_arguments=dict(case.example_args), arguments_schema=case.schema(), needs=list(case.needs))


@router.get("", response_model=CaseList)
def list_cases(principal: PrincipalDep) -> CaseList:
    return CaseList(items=[case_read(c) for c in sorted(CASES.values(), key=lambda c: c.name)])


@router.get("/{case}", response_model=CaseRead, responses={404: {"model": ErrorBody}})
def read_case(case: str, principal: PrincipalDep) -> CaseRead:
    try:
        return case_read(get_case(case))
    except UnknownCaseError as exc:
        raise UnknownCase(str(exc)) from None
