"""Tenants' AWS identities: which role a tenant's stacks are deployed with, in which account.

An ``aws`` stack is deployed only with its tenant's own role (set by an admin), which the AWS
provider assumes (its ``assumeRoles`` setting): never with the service's own credentials, which
serve only to assume it. A ``sandbox`` stack is deployed in its tenant's own sandbox account, a
fixed account id derived from the tenant's name, so tenants cannot see or touch each other's
sandbox resources, as on AWS. Arguments that name a resource by ARN must name one of that account.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service.db import TenantAwsIdentity
from service.errors import MissingAwsIdentity

SANDBOX_ROLE = "serverless-cases-deployer"
SANDBOX_SHARED_ACCOUNT = "123456789012"  # the sandbox's own account (the plain CLI's), never a tenant's
_ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::(\d{12}):role/.+")
_ARN_ACCOUNT = re.compile(r"arn:aws[\w-]*:[\w-]+:[\w-]*:(\d{12}):.+")


@dataclass(frozen=True)
class AwsIdentity:
    role_arn: str
    external_id: str | None = None

    @property
    def account(self) -> str:
        matched = _ROLE_ARN.fullmatch(self.role_arn)
        assert matched is not None, "role ARNs are validated when set"
        return matched.group(1)

    def assume_roles(self, tenant: str) -> list[dict[str, str]]:
        """The AWS provider's ``assumeRoles`` setting (a chain of one role)."""
        role = {"roleArn": self.role_arn, "sessionName": f"serverless-cases-{tenant}"[:64]}
        if self.external_id:
            role["externalId"] = self.external_id
        return [role]


def sandbox_account(tenant: str) -> str:
    """The tenant's own sandbox account id: twelve digits from its name, never the shared one."""
    digits = str(int(hashlib.sha256(f"sandbox-account/{tenant}".encode()).hexdigest(), 16) % 10**12).zfill(12)
    return digits if digits != SANDBOX_SHARED_ACCOUNT else digits[::-1]


def stored(session: Session, tenant: str) -> AwsIdentity | None:
    row = session.get(TenantAwsIdentity, tenant)
    return AwsIdentity(row.role_arn, row.external_id) if row is not None else None


def for_target(session: Session, tenant: str, target: str) -> AwsIdentity:
    """Who deploys the tenant's stacks of ``target``; an ``aws`` stack needs the tenant's role."""
    if target == "sandbox":
        return AwsIdentity(f"arn:aws:iam::{sandbox_account(tenant)}:role/{SANDBOX_ROLE}")
    identity = stored(session, tenant)
    if identity is None:
        raise MissingAwsIdentity(f"tenant {tenant!r} has no AWS role: its aws stacks are deployed only with a role "
                                 f"of its own, which an admin sets with PUT /v1/tenants/{tenant}/aws-identity")
    return identity


def foreign_resources(args: Mapping[str, Any], account: str, path: str = "") -> list[str]:
    """Every argument that names, by ARN, a resource of another account than ``account``."""
    problems: list[str] = []
    for key, value in args.items():
        where = f"{path}.{key}" if path else str(key)
        problems += _foreign_in(value, account, where)
    return problems


def _foreign_in(value: Any, account: str, where: str) -> list[str]:
    if isinstance(value, str):
        matched = _ARN_ACCOUNT.fullmatch(value)
        if matched is not None and matched.group(1) != account:
            return [f"{where}: names a resource of account {matched.group(1)}; this tenant's stacks of this target "
                    f"are made in account {account}"]
        return []
    if isinstance(value, Mapping):
        return foreign_resources(value, account, where)
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _foreign_in(item, account, f"{where}[{i}]")]
    return []
