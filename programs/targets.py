"""Deployment targets. A stack's target is chosen when the stack is created, kept in its
config (``serverless-cases:target``) and never changes afterwards.

- ``sandbox``: the offline provider plugin in ``sandbox/bin`` is found on PATH; plugin
  downloads and update checks are off.
- ``aws``: the real pulumi-aws provider with the user's credentials and region; ambient
  plugins are ignored and ``sandbox/bin`` is never on PATH, so the sandbox cannot shadow it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

SANDBOX = "sandbox"
AWS = "aws"
TARGETS = (SANDBOX, AWS)
CONFIG_NAMESPACE = "serverless-cases"
TARGET_ENV = "SERVERLESS_CASES_TARGET"
REPO_ROOT = Path(__file__).resolve().parent.parent
SANDBOX_BIN = REPO_ROOT / "sandbox" / "bin"


class TargetError(ValueError):
    pass


def check_target(name: str) -> str:
    if name not in TARGETS:
        raise TargetError(f"unknown target {name!r}; valid targets: {', '.join(TARGETS)}")
    return name


def _without_sandbox(path: str) -> str:
    keep = [p for p in path.split(os.pathsep) if p and Path(p).resolve() != SANDBOX_BIN.resolve()]
    return os.pathsep.join(keep)


def engine_env(target: str, base: Mapping[str, str], toolchain_bin: str | None = None) -> dict[str, str]:
    """The environment the Pulumi CLI runs with for a stack of ``target``."""
    check_target(target)
    env = dict(base)
    path = _without_sandbox(env.get("PATH", ""))
    front = [toolchain_bin] if toolchain_bin else []
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    env[TARGET_ENV] = target
    if target == SANDBOX:
        front.append(str(SANDBOX_BIN))
        env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
        env.pop("PULUMI_IGNORE_AMBIENT_PLUGINS", None)
    else:
        env["PULUMI_IGNORE_AMBIENT_PLUGINS"] = "true"
    env["PATH"] = os.pathsep.join([*front, path]) if path else os.pathsep.join(front)
    return env


def sandbox_on_path(env: Mapping[str, str]) -> bool:
    found = shutil.which("pulumi-resource-aws", path=env.get("PATH", ""))
    return found is not None and Path(found).resolve().parent == SANDBOX_BIN.resolve()


def environment_problem(target: str, env: Mapping[str, str]) -> str | None:
    """Why the current process environment cannot run a stack of ``target``, if it cannot."""
    shell_target = env.get(TARGET_ENV)
    if shell_target and shell_target != target:
        return (f"this stack's target is {target!r} but the environment is set up for {shell_target!r}; "
                f"run `. toolchain/env.sh {target}` first")
    if target == AWS and sandbox_on_path(env) and env.get("PULUMI_IGNORE_AMBIENT_PLUGINS") != "true":
        return ("the sandbox provider plugin is on PATH, so it would stand in for the real AWS provider; "
                "run `. toolchain/env.sh aws` first")
    if target == SANDBOX and not sandbox_on_path(env):
        return "the sandbox provider plugin is not on PATH; run `. toolchain/env.sh sandbox` first"
    return None


def runtime_env(repo: Path = REPO_ROOT) -> dict[str, str]:
    """What the language host would tell the plugins it serves about the runtime: an inline
    program has no language host, and the dynamic resource provider needs the virtualenv."""
    return {"PULUMI_RUNTIME_VIRTUALENV": str(repo / ".venv")}


def project_file(repo: Path = REPO_ROOT, main: Path | None = None) -> str:
    """A ``Pulumi.yaml`` for a folder outside the repository that runs this project's program
    (or ``main``) with its virtualenv: how the service and the tests keep per-stack workspaces."""
    return (
        "name: serverless-cases\n"
        "runtime:\n"
        "  name: python\n"
        "  options:\n"
        f"    virtualenv: {repo / '.venv'}\n"
        f"main: {main or repo / 'programs'}/\n"
    )
