"""Every registered case, through the real Pulumi CLI on a temporary local backend against
the sandbox: preview, up (with the project's policy pack: no mandatory policy broken), up again
(no changes), refresh (no drift), a config change (an update with the expected diff), destroy
(no resources left)."""

from __future__ import annotations

from typing import Any

import pytest

from components import CASES
from tests.engine import REPO, Workspace, managed

pytestmark = pytest.mark.engine

# For each case: an argument change, and the (resource type, property) pairs it must update.
CONFIG_CHANGES: dict[str, tuple[dict[str, Any], set[tuple[str, str]]]] = {
    "todo-app": ({"cache_ttl_seconds": 0}, {("aws:apigateway/integration:Integration", "cacheKeyParameters"),
                                            ("aws:apigateway/method:Method", "requestParameters")}),
    "blog": ({"thumbnail_size": "320x240"}, {("aws:lambda/function:Function", "environment")}),
    "software-updates": ({"cache_ttl_seconds": 3600}, {("aws:cloudfront/cachePolicy:CachePolicy", "defaultTtl")}),
    "premium-content": ({"signed_url_expiry_seconds": 120}, {("aws:lambda/function:Function", "environment")}),
    "big-data-ingestion": ({"buffer_seconds": 120},
                           {("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "extendedS3Configuration")}),
    "microservices": ({"services": [{"name": "orders", "kind": "api"}, {"name": "www", "kind": "static"},
                                    {"name": "legacy", "kind": "endpoint", "addresses": ["192.0.2.10", "192.0.2.12"]}]},
                      {("aws:route53/record:Record", "records")}),
    "account-baseline": ({"tags": {"team": "platform"}}, {("aws:iam/role:Role", "tags")}),
}


# Resources the change must replace: a REST API's deployment is a frozen snapshot, so a change
# to what it holds (caching turned off removes the token from the cache key) makes a new one.
REPLACED: dict[str, set[str]] = {"todo-app": {"aws:apigateway/deployment:Deployment"}}
# Resources the change removes: no cache, no per-method cache settings.
DELETED: dict[str, set[str]] = {"todo-app": {"aws:apigateway/methodSettings:MethodSettings"}}


def test_every_case_has_a_config_change_to_exercise() -> None:
    assert set(CONFIG_CHANGES) == set(CASES)


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_case_lifecycle_on_sandbox(workspace: Workspace, case_name: str) -> None:
    case = CASES[case_name]
    stack = "e2e"
    workspace.new_stack(stack, case_name, args=dict(case.example_args))

    planned = workspace.preview_steps(stack)
    assert planned and all(step["op"] in ("create", "same") for step in planned)
    assert any(step["op"] == "create" for step in planned)

    # Every case keeps every mandatory policy of the project's pack (the engine fails the up if not).
    workspace.pulumi("up", "--yes", "--skip-preview", "--policy-pack", str(REPO / "policies"), "--stack", stack)
    outputs = workspace.outputs(stack)
    for name in case.outputs:
        assert outputs.get(name) not in (None, "", [], {}), f"output {name} is missing or empty"
    assert outputs["target"] == "sandbox" and outputs["case"] == case_name
    created = [r for r in managed(workspace.resources(stack)) if r["type"].startswith("aws:")]
    assert len(created) == len(workspace.cloud_records()) > 0

    workspace.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes", "--stack", stack)
    workspace.pulumi("refresh", "--yes", "--skip-preview", "--expect-no-changes", "--stack", stack)

    change, expected = CONFIG_CHANGES[case_name]
    for key, value in change.items():
        workspace.set_arg(stack, key, value)
    steps = workspace.preview_steps(stack)
    changed = {(s["newState"]["type"], key) for s in steps if s["op"] == "update" for key in s.get("diffReasons", [])}
    assert expected <= changed
    replaced = {s["newState"]["type"] for s in steps if s["op"] in ("replace", "create-replacement")}
    assert replaced == REPLACED.get(case_name, set())
    assert {s["oldState"]["type"] for s in steps if s["op"] == "delete"} == DELETED.get(case_name, set())
    assert not [s for s in steps if s["op"] == "create"]
    workspace.pulumi("up", "--yes", "--skip-preview", "--stack", stack)
    workspace.pulumi("preview", "--expect-no-changes", "--stack", stack)

    used = workspace.use_buckets()  # the stack's users and its access logging fill its buckets
    if case.protects_data:  # tables, user pools and used buckets refuse deletion, as on AWS, until protection is off
        refused = workspace.pulumi("destroy", "--yes", "--skip-preview", "--stack", stack, check=False)
        said = refused.stdout + refused.stderr
        assert refused.returncode != 0, said[-2000:]
        assert any(code in said for code in ("ValidationException", "InvalidParameterException", "BucketNotEmpty")), \
            said[-2000:]
        workspace.set_arg(stack, "deletion_protection", False)
        workspace.pulumi("up", "--yes", "--skip-preview", "--stack", stack)
    workspace.pulumi("destroy", "--yes", "--skip-preview", "--stack", stack)
    assert managed(workspace.resources(stack)) == []
    assert workspace.cloud_records() == [] and workspace.objects() == []  # buckets deleted with their objects
    assert used > 0 or not case.protects_data
