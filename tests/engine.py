"""Drive the real Pulumi CLI on this project, isolated per test: a temporary project folder
(whose Pulumi.yaml points at the repository's program and virtualenv), a temporary local
file backend, passphrase and sandbox cloud."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from programs import backend, targets
from sandbox.cloud import BY_HAND, OBJECT, SandboxCloud
from sandbox.rules import Identity
from sandbox.synthesis import DEFAULT_REGION

REPO = targets.REPO_ROOT


def toolchain_bin() -> str:
    """The pinned toolchain: from `make` (SERVERLESS_CASES_TOOLCHAIN_BIN), else ensured now.
    A missing toolchain fails the test run; it never skips."""
    given = os.environ.get("SERVERLESS_CASES_TOOLCHAIN_BIN")
    if given:
        return given
    done = subprocess.run([str(REPO / "toolchain" / "ensure-pulumi.sh")], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip().splitlines()[-1]


class CommandFailedError(AssertionError):
    pass


@dataclass
class Workspace:
    root: Path
    toolchain: str
    target: str = targets.SANDBOX
    main: Path | None = None
    """Another program than the project's (a test program); default the project's."""
    account_set_up: bool = True
    """Whether the sandbox account's API Gateway CloudWatch role is set, as an administrator would have
    set it (``sandbox.cloud.set_up_by_hand``): what the cases with a REST API need beforehand."""

    @property
    def project_dir(self) -> Path:
        return self.root / "project"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def __post_init__(self) -> None:
        self.project_dir.mkdir(parents=True, exist_ok=True)
        (self.project_dir / "Pulumi.yaml").write_text(targets.project_file(main=self.main))
        (self.data_dir / "state").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "passphrase").write_text("test-passphrase")
        if self.account_set_up:
            SandboxCloud(self.data_dir / "sandbox-cloud", DEFAULT_REGION).set_up_by_hand()

    def env(self, target: str | None = None, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "SANDBOX_"))}
        env = targets.engine_env(target or self.target, base, self.toolchain)
        env.update({
            "PULUMI_BACKEND_URL": backend.file_url(self.data_dir / "state"),
            "PULUMI_CONFIG_PASSPHRASE_FILE": str(self.data_dir / "passphrase"),
            "PULUMI_HOME": str(self.root / "pulumi-home"),
            "SANDBOX_CLOUD_DIR": str(self.data_dir / "sandbox-cloud"),
        })
        env.update(extra)
        return env

    def pulumi(self, *args: str, check: bool = True, target: str | None = None, timeout: float = 300,
               **extra_env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["pulumi", "--non-interactive", *args], cwd=self.project_dir, env=self.env(target, **extra_env),
            capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise CommandFailedError(f"pulumi {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def new_stack(self, stack: str, case: str, *, target: str = targets.SANDBOX,
                  args: dict[str, Any] | None = None) -> None:
        self.pulumi("stack", "init", stack, target=target)
        self.pulumi("config", "set", "serverless-cases:target", target, "--stack", stack, target=target)
        self.pulumi("config", "set", "serverless-cases:case", case, "--stack", stack, target=target)
        for key, value in (args or {}).items():
            self.set_arg(stack, key, value, target=target)

    def set_arg(self, stack: str, key: str, value: Any, *, target: str | None = None) -> None:
        """Set one argument with ``--path``, element by element for lists and objects (the
        way a CLI user sets structured arguments)."""
        self.pulumi("config", "rm", "--path", "--stack", stack, f"serverless-cases:args.{key}", target=target,
                    check=False)
        for path, leaf in _leaves(f"serverless-cases:args.{key}", value):
            kind = {bool: "bool", int: "int", float: "float"}.get(type(leaf), "string")
            text = json.dumps(leaf) if kind == "bool" else str(leaf)
            self.pulumi("config", "set", "--path", "--type", kind, "--stack", stack, "--", path, text, target=target)

    def resources(self, stack: str) -> list[dict[str, Any]]:
        exported = json.loads(self.pulumi("stack", "export", "--stack", stack).stdout)
        return exported.get("deployment", {}).get("resources") or []

    def outputs(self, stack: str) -> dict[str, Any]:
        return json.loads(self.pulumi("stack", "output", "--json", "--stack", stack).stdout)

    def preview_steps(self, stack: str) -> list[dict[str, Any]]:
        out = self.pulumi("preview", "--json", "--stack", stack).stdout
        return json.loads(out).get("steps") or []

    def use_buckets(self) -> int:
        """Put an object in every bucket of the sandbox's own account, as a stack's users and its access
        logging would; how many buckets."""
        used = 0
        for cloud in regional_clouds(self.data_dir / "sandbox-cloud"):
            for bucket in cloud.find("aws:s3/bucket:Bucket"):
                cloud.put_object(str(bucket["bucket"]), "used/object.txt")
                used += 1
        return used

    def objects(self) -> list[Any]:
        """The objects the sandbox's own account holds in its buckets, in every region."""
        return [found for cloud in regional_clouds(self.data_dir / "sandbox-cloud") for found in cloud.find(OBJECT)]

    def cloud_records(self, account: str | None = None) -> list[Any]:
        """What the sandbox holds, in every region, for its own account (or ``account``)."""
        return cloud_records(self.data_dir / "sandbox-cloud", account)


def regional_clouds(root: Path, account: str | None = None) -> list[SandboxCloud]:
    """The sandbox's own account (or ``account``) in each region it holds anything in."""
    folder = root if account is None else root / "accounts" / account
    if not folder.exists():
        return []
    identity = Identity() if account is None else Identity(account=account)
    return [SandboxCloud(root, region.name, identity) for region in sorted(folder.iterdir())
            if region.is_dir() and region.name != "accounts"]


def cloud_records(root: Path, account: str | None = None) -> list[Any]:
    """What stacks made in a sandbox cloud folder, in every region, for its own account (or
    ``account``): not the account's settings made by hand (``sandbox.cloud.set_up_by_hand``), nor the
    objects written into buckets (:meth:`Workspace.objects`)."""
    return [record for cloud in regional_clouds(root, account) for record in cloud.records()
            if not record.urn.startswith(BY_HAND) and record.type != OBJECT]


def _leaves(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(f"{prefix}.{k}", v)]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(f"{prefix}[{i}]", v)]
    return [(prefix, value)]


def managed(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Resources a provider created (not the stack, components or provider references)."""
    return [r for r in resources if r.get("custom") and not r["type"].startswith("pulumi:providers:")]
