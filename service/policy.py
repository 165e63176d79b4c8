"""Policy as code for the service's runs: the project's pack (``policies/``), enforced on every
preview, up and update, plus what an admin adds for a tenant (more packs, a configuration of
the project's pack). A configuration may raise an advisory policy to mandatory or disable an
advisory one; the project's mandatory policies stay mandatory for every tenant."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from policies import secure_defaults
from programs.targets import REPO_ROOT
from service.db import TenantPolicies
from service.errors import InvalidPolicyConfig

PROJECT_PACK = REPO_ROOT / "policies"


@dataclass(frozen=True)
class TenantPolicy:
    config: dict[str, Any] = field(default_factory=dict)
    """The project's pack configuration: ``{policy: {"enforcementLevel": level}}``."""
    packs: list[str] = field(default_factory=list)
    """More policy packs (folders with a PulumiPolicy.yaml on the service's machine)."""

    def problems(self) -> list[str]:
        problems = secure_defaults.config_problems(self.config)
        for pack in self.packs:
            folder = Path(pack)
            if not folder.is_absolute():
                problems.append(f"packs: {pack!r} is not an absolute path")
            elif not _is_pack(folder):
                problems.append(f"packs: {pack!r} holds no PulumiPolicy.yaml")
            elif folder.resolve() == PROJECT_PACK.resolve():
                problems.append(f"packs: {pack!r} is the project's own pack, which every run has")
        if len(set(self.packs)) != len(self.packs):
            problems.append("packs: listed twice")
        return problems

    def levels(self) -> dict[str, str]:
        return secure_defaults.effective_levels(self.config)


def _is_pack(folder: Path) -> bool:
    try:
        return (folder / "PulumiPolicy.yaml").is_file()
    except (OSError, ValueError):  # a path no file can have (a NUL byte, too long)
        return False


def checked(config: dict[str, Any], packs: list[str]) -> TenantPolicy:
    """A tenant's policy settings, or InvalidPolicyConfig naming every problem."""
    normalised = {name: value if isinstance(value, dict) else {"enforcementLevel": value}
                  for name, value in config.items()}
    policy = TenantPolicy(normalised, list(packs))
    problems = policy.problems()
    if problems:
        raise InvalidPolicyConfig(problems)
    return policy


def for_tenant(session: Session, tenant: str) -> TenantPolicy:
    row = session.get(TenantPolicies, tenant)
    return TenantPolicy(dict(row.config), list(row.packs)) if row is not None else TenantPolicy()


def job_packs(policy: TenantPolicy, folder: Path) -> tuple[list[str], list[str]]:
    """The packs a run uses and, for each, the configuration file the engine reads (written into
    ``folder``): the project's pack first, with the tenant's configuration."""
    folder.mkdir(parents=True, exist_ok=True)
    packs = [str(PROJECT_PACK), *policy.packs]
    configs = []
    for index, _pack in enumerate(packs):
        path = folder / f"policy-config-{index}.json"
        path.write_text(json.dumps(policy.config if index == 0 else {}))
        configs.append(str(path))
    return packs, configs
