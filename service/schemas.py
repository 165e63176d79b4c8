"""Request and response bodies, named by role."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

STACK_NAME = r"^[a-z][a-z0-9-]{2,47}$"
TENANT_NAME = r"^[a-z][a-z0-9-]{1,30}$"
SECRET_MARK = "[secret]"
RunKind = Literal["up", "update", "preview", "refresh", "destroy", "recover"]
RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
ArgumentValue = str | int | float | bool | None | list[Any] | dict[str, Any]
SecretValue = str | int | float | bool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    error: str = Field(description="The error's type, e.g. StackNotFound")
    detail: Any = Field(description="What went wrong, for a person")


# Every authenticated operation may answer these, with the error body.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid bearer token"},
    413: {"model": ErrorBody, "description": "The body is too large"},
    422: {"model": ErrorBody, "description": "Invalid request: every problem listed"},
}


class StackCreate(Strict):
    name: str = Field(pattern=STACK_NAME, description="3-48 characters: lowercase letters, digits, '-'")
    case: str = Field(min_length=1, max_length=64)
    target: Literal["sandbox", "aws"] | None = Field(default=None, description="Default: the service's default target")
    arguments: dict[str, ArgumentValue] = Field(default_factory=dict, max_length=64)
    secret_arguments: dict[str, SecretValue] = Field(default_factory=dict, max_length=64)


class StackUpdate(Strict):
    arguments: dict[str, ArgumentValue] = Field(
        default_factory=dict, max_length=64, description="Merged into the current arguments; null removes one")
    secret_arguments: dict[str, SecretValue] = Field(default_factory=dict, max_length=64)
    target: Literal["sandbox", "aws"] | None = Field(default=None, description="Must equal the stack's target")


class RunRef(BaseModel):
    id: str
    kind: RunKind
    status: RunStatus


class RunRead(BaseModel):
    id: str
    stack: str
    kind: RunKind
    status: RunStatus
    queued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration_seconds: float | None
    summary: dict[str, Any]
    error: ErrorBody | None
    node: str | None = Field(default=None, description="The node that ran (or runs) it")
    recovered: bool = Field(default=False, description="The node running this run died (or stopped) during it; "
                            "another execution recovered the stack and carried the run through")


class StackRead(BaseModel):
    name: str
    case: str
    target: Literal["sandbox", "aws"]
    pulumi_stack: str = Field(description="The stack's name on the Pulumi backend (project serverless-cases)")
    arguments: dict[str, Any] = Field(description=f"What the next run applies. Secret arguments appear as {SECRET_MARK!r}")
    applied_arguments: dict[str, Any] | None = Field(
        default=None, description="What the last successful up or update applied (null before one succeeded); "
                                  "a change that fails or is cancelled goes back to these")
    status: str
    outputs: dict[str, Any] = Field(description=f"Secret outputs appear as {SECRET_MARK!r}")
    resource_count: int
    last_run: RunRef | None
    created_at: dt.datetime
    updated_at: dt.datetime


class StackList(BaseModel):
    items: list[StackRead]
    next_cursor: str | None = Field(default=None, description="Give it as cursor for the next page; null on the last")


class RunList(BaseModel):
    items: list[RunRead]
    next_cursor: str | None = Field(default=None, description="Give it as cursor for the next page; null on the last")


class CaseRead(BaseModel):
    name: str
    description: str
    outputs: list[str]
    example_arguments: dict[str, Any]
    arguments_schema: dict[str, Any]
    needs: list[str]
    """Cases the account's region must have deployed first (``account-baseline`` for a REST API)."""


class CaseList(BaseModel):
    items: list[CaseRead]


class TenantCreate(Strict):
    name: str = Field(pattern=TENANT_NAME)


ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$"


class AwsIdentityWrite(Strict):
    role_arn: str = Field(pattern=ROLE_ARN, max_length=2048,
                          description="The IAM role the tenant's aws stacks are deployed with")
    external_id: str | None = Field(default=None, min_length=2, max_length=1224, pattern=r"^[A-Za-z0-9_+=,.@:/-]+$",
                                    description="What the role's trust policy requires as sts:ExternalId")


class AwsIdentityRead(BaseModel):
    tenant: str
    role_arn: str
    account: str = Field(description="The account the tenant's aws stacks are made in")
    external_id_set: bool = Field(description="Whether an external id is kept (it is never shown back)")
    sandbox_account: str = Field(description="The account the tenant's sandbox stacks are made in")


class PolicySettingsWrite(Strict):
    config: dict[str, str | dict[str, Any]] = Field(
        default_factory=dict, max_length=100,
        description="The project's pack configuration: {policy: level} or {policy: {enforcementLevel: level}}; "
                    "an advisory policy may be raised to mandatory or disabled, a mandatory one stays mandatory")
    packs: list[str] = Field(default_factory=list, max_length=20,
                             description="More policy packs: absolute paths of folders with a PulumiPolicy.yaml")


class PolicySettingsRead(BaseModel):
    tenant: str
    config: dict[str, Any]
    packs: list[str]


class PolicyRead(BaseModel):
    name: str
    description: str
    level: Literal["mandatory", "advisory", "disabled"] = Field(description="As enforced for this tenant")
    project_level: Literal["mandatory", "advisory"] = Field(description="As the project ships it")


class PolicyList(BaseModel):
    pack: str
    items: list[PolicyRead]
    extra_packs: list[str] = Field(description="Packs an admin added for this tenant")


class TokenRead(BaseModel):
    tenant: str
    token: str = Field(description="Shown once; only its hash is stored")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
