"""A stack's target decides which provider plugin serves it, and it never changes."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pulumi
import pytest

from programs import program, targets
from tests.engine import Workspace, managed

REAL_STANDIN = """#!/bin/sh
# Stands in for the real pulumi-resource-aws in the plugin cache; identifies itself.
SANDBOX_PROVIDER_IDENTITY=cached-real exec {shim} "$@"
"""


def _install_cached_real_provider(workspace: Workspace, tmp_path: Path) -> None:
    plugin = tmp_path / "pulumi-resource-aws"
    plugin.write_text(REAL_STANDIN.format(shim=targets.SANDBOX_BIN / "pulumi-resource-aws"))
    plugin.chmod(0o755)
    workspace.pulumi("plugin", "install", "resource", "aws", "7.51.1", "--file", str(plugin), target=targets.AWS)


def test_engine_env_keeps_sandbox_off_path_for_aws_stacks() -> None:
    polluted = {"PATH": os.pathsep.join([str(targets.SANDBOX_BIN), "/usr/bin"])}
    env = targets.engine_env(targets.AWS, polluted, "/opt/pulumi/bin")
    assert str(targets.SANDBOX_BIN) not in env["PATH"].split(os.pathsep)
    assert env["PULUMI_IGNORE_AMBIENT_PLUGINS"] == "true"
    assert not targets.sandbox_on_path(env)
    sandbox = targets.engine_env(targets.SANDBOX, {"PATH": "/usr/bin"}, "/opt/pulumi/bin")
    assert targets.sandbox_on_path(sandbox)
    assert sandbox["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert "PULUMI_IGNORE_AMBIENT_PLUGINS" not in sandbox


def test_aws_stack_never_resolves_the_sandbox_plugin(workspace: Workspace, tmp_path: Path) -> None:
    launches = tmp_path / "launches.log"
    _install_cached_real_provider(workspace, tmp_path)
    workspace.new_stack("prod", "todo-app", target=targets.AWS)
    # Even with the sandbox first on PATH, an aws stack gets the cached (real) provider.
    polluted_path = os.pathsep.join([str(targets.SANDBOX_BIN), workspace.env(targets.AWS)["PATH"]])
    workspace.pulumi("preview", "--stack", "prod", target=targets.AWS, PATH=polluted_path,
                     SANDBOX_LAUNCH_LOG=str(launches))
    started = launches.read_text().split()
    assert started and set(started) == {"cached-real"}


def test_aws_stack_without_real_provider_fails_instead_of_using_sandbox(workspace: Workspace,
                                                                         tmp_path: Path) -> None:
    launches = tmp_path / "launches.log"
    workspace.new_stack("prod", "todo-app", target=targets.AWS)
    done = workspace.pulumi("preview", "--stack", "prod", target=targets.AWS, check=False,
                            SANDBOX_LAUNCH_LOG=str(launches),
                            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true")
    assert done.returncode != 0
    assert "aws" in (done.stdout + done.stderr)
    assert not launches.exists()


def test_target_cannot_change_after_deploy(workspace: Workspace) -> None:
    workspace.new_stack("dev", "todo-app")
    workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "dev")
    before = workspace.resources("dev")
    workspace.pulumi("config", "set", "serverless-cases:target", "aws", "--stack", "dev")
    done = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "dev", target=targets.AWS, check=False)
    assert done.returncode != 0
    assert "its target cannot change to 'aws'" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert [r["urn"] for r in managed(workspace.resources("dev"))] == [r["urn"] for r in managed(before)]


def test_environment_for_another_target_is_refused(workspace: Workspace) -> None:
    workspace.new_stack("dev", "todo-app")
    done = workspace.pulumi("preview", "--stack", "dev", check=False, SERVERLESS_CASES_TARGET=targets.AWS)
    assert done.returncode != 0
    assert "run `. toolchain/env.sh sandbox` first" in done.stdout


def test_the_target_check_waits_out_a_checkpoint_being_written_and_fails_closed_on_anything_else(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # What the engine answered a stack's own program while it wrote the stack's checkpoint: "unknown
    # stack" failed one run in 32 of a capacity burst on the file backend, and a plain `pulumi up`.
    answers: list[Any] = [
        Exception('invocation of pulumi:pulumi:readStackOutputs returned an error: unknown stack '
                  '"organization/serverless-cases/admin.s"'),
        Exception("failed to load checkpoint: unexpected EOF"),
        SimpleNamespace(value={"outputs": {"target": "aws"}})]
    asked: list[str] = []

    def invoke(token: str, args: dict[str, Any]) -> Any:
        asked.append(args["name"])
        answer = answers[len(asked) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(pulumi.runtime, "invoke", invoke)
    monkeypatch.setattr(pulumi, "get_organization", lambda: "organization")
    monkeypatch.setattr(pulumi, "get_project", lambda: "serverless-cases")
    monkeypatch.setattr(pulumi, "get_stack", lambda: "admin.s")
    assert program.previous_target(pause=0) == "aws"
    assert asked == ["organization/serverless-cases/admin.s"] * 3
    answers[:], asked[:] = [Exception("AccessDenied: not authorized")], []
    with pytest.raises(program.ProgramError, match="AccessDenied"):  # anything else: the check fails closed
        program.previous_target(pause=0)
    assert len(asked) == 1
