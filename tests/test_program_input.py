"""Bad stack config fails before any resource is registered, with a message that says why."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from components import CASES, ComponentArgsError, UnknownCaseError, get_case
from tests.engine import REPO, Workspace, managed


def test_unknown_case_lists_valid_cases() -> None:
    with pytest.raises(UnknownCaseError) as err:
        get_case("todo")
    assert all(name in str(err.value) for name in CASES)


def test_invalid_arguments_are_all_reported_at_once() -> None:
    with pytest.raises(ComponentArgsError) as err:
        get_case("todo-app").parse_args({"cache_ttl_seconds": 99999, "mfa": 7, "bogus": True})
    problems = err.value.problems
    assert any(p.startswith("cache_ttl_seconds:") for p in problems)
    assert any(p.startswith("mfa:") for p in problems)
    assert "bogus: unknown field" in problems
    assert len(problems) == 3


def test_unknown_case_fails_before_any_resource(workspace: Workspace) -> None:
    workspace.new_stack("dev", "no-such-case")
    done = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "dev", check=False)
    assert done.returncode != 0
    assert "unknown case 'no-such-case'; valid cases: " in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert managed(workspace.resources("dev")) == [] and workspace.cloud_records() == []


def test_invalid_arguments_fail_before_any_resource(workspace: Workspace) -> None:
    workspace.new_stack("dev", "todo-app", args={"cache_ttl_seconds": -5, "dax_replication_factor": 0})
    done = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "dev", check=False)
    assert done.returncode != 0
    assert "cache_ttl_seconds: -5 is outside 0..3600" in done.stdout
    assert "replication_factor: 0 is outside 1..10" in done.stdout
    assert managed(workspace.resources("dev")) == [] and workspace.cloud_records() == []


def test_a_region_without_a_service_the_case_needs_fails_before_any_resource(workspace: Workspace) -> None:
    """Found while the case is built (the region is the stack's, not an argument): one clear
    message, no traceback, nothing created."""
    workspace.new_stack("dev", "big-data-ingestion")
    workspace.pulumi("config", "set", "aws:region", "af-south-1", "--stack", "dev")
    done = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "dev", check=False)
    assert done.returncode != 0
    assert "region: IoT Core is not offered in af-south-1" in done.stdout, done.stdout[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert managed(workspace.resources("dev")) == [] and workspace.cloud_records() == []


def test_missing_target_is_reported(workspace: Workspace) -> None:
    workspace.pulumi("stack", "init", "dev")
    workspace.pulumi("config", "set", "serverless-cases:case", "todo-app", "--stack", "dev")
    done = workspace.pulumi("preview", "--stack", "dev", check=False)
    assert done.returncode != 0
    assert "serverless-cases:target" in done.stdout


def test_the_service_worker_reports_a_program_error_inline_as_one_clear_message(workspace: Workspace) -> None:
    """The service runs the program inline, in its worker: a problem is the same message,
    with no traceback, and nothing is created."""
    job = {"run_id": "inline-check", "kind": "up", "pulumi_stack": "inline", "case": "todo-app",
           "target": "sandbox", "workspace_dir": str(workspace.root / "inline"), "env": workspace.env(),
           "toolchain_bin": workspace.toolchain, "parallel": 8, "args": {"cache_ttl_seconds": -5}}
    done = subprocess.run([sys.executable, "-m", "service.worker", workspace.toolchain], input=json.dumps(job),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1 and "error" in lines[-1], done.stderr[-3000:]
    error = lines[-1]["error"]
    assert error["type"] == "DeploymentFailed"
    assert "cache_ttl_seconds: -5 is outside 0..3600" in error["detail"]
    assert "Traceback" not in done.stdout + done.stderr
    assert workspace.cloud_records() == []


def test_the_service_worker_reports_a_region_without_a_service_as_one_clear_message(workspace: Workspace) -> None:
    """A service stack deploys in its node's region (the environment the job carries)."""
    job = {"run_id": "region-check", "kind": "up", "pulumi_stack": "inline-region", "case": "big-data-ingestion",
           "target": "sandbox", "workspace_dir": str(workspace.root / "inline-region"),
           "env": {**workspace.env(), "AWS_REGION": "af-south-1"}, "toolchain_bin": workspace.toolchain,
           "parallel": 8, "args": {}}
    done = subprocess.run([sys.executable, "-m", "service.worker", workspace.toolchain], input=json.dumps(job),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1 and "error" in lines[-1], done.stderr[-3000:]
    assert "region: IoT Core is not offered in af-south-1" in lines[-1]["error"]["detail"]
    assert "Traceback" not in done.stdout + done.stderr
    assert workspace.cloud_records() == []


def test_a_worker_started_from_a_shell_leaves_the_shells_scheduling_group_alone(workspace: Workspace) -> None:
    """A worker nices itself (and, when it leads its session, as the service starts it, its
    session's autogroup); started from a shell, raising the shell's group would nice everything
    the shell runs afterwards, the service and its API included."""
    shell = textwrap.dedent(f"""
        import subprocess, sys
        before = open("/proc/self/autogroup").read().split()[-1]
        subprocess.run([sys.executable, "-m", "service.worker", {workspace.toolchain!r}, "19"], input="",
                       cwd={str(REPO)!r}, capture_output=True, timeout=300)
        print(before, open("/proc/self/autogroup").read().split()[-1])
    """)
    done = subprocess.run([sys.executable, "-c", shell], capture_output=True, text=True, timeout=300,
                          start_new_session=True)  # a session of its own, as a login shell has
    before, after = done.stdout.split()
    assert before == "0" and after == "0", done.stdout + done.stderr
