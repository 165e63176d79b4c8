"""Stacks of one account share CloudFront policies: an account holds 20 response headers policies
and 20 cache policies (CloudFront's quotas), so past 20 stacks with a distribution they attach one
made once (by the account baseline) instead of making their own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import CASES, defaults
from components.args import ComponentArgsError
from sandbox import rules
from sandbox.mocks import AwsRefusalError, SandboxMocks
from tests.engine import Workspace
from tests.mocks import Recorded, build
from tests.service_harness import Service, wait_run

HEADERS = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
CACHE = "aws:cloudfront/cachePolicy:CachePolicy"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
AWS_SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"  # AWS's managed SecurityHeadersPolicy
AWS_CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
NO_SUCH_POLICY = "0d6e3f2a-5b1c-4e8d-9a7f-2c4b6d8e0f1a"
CLOUDFRONT_CASES = ["blog", "microservices", "premium-content", "software-updates"]


def _behaviours(distribution: Any) -> list[dict[str, Any]]:
    return [distribution.inputs["defaultCacheBehavior"], *(distribution.inputs.get("orderedCacheBehaviors") or [])]


@pytest.mark.parametrize("case_name", CLOUDFRONT_CASES)
def test_a_case_given_a_shared_headers_policy_makes_none_and_attaches_it_everywhere(case_name: str) -> None:
    own = build(case_name)
    assert own.of_type(HEADERS), f"{case_name} makes its own policy by default"
    shared = build(case_name, {"response_headers_policy_id": AWS_SECURITY_HEADERS})
    assert not shared.of_type(HEADERS)
    distributions = shared.of_type(DISTRIBUTION)
    assert distributions and len(distributions) == len(own.of_type(DISTRIBUTION))
    for distribution in distributions:
        assert {b["responseHeadersPolicyId"] for b in _behaviours(distribution)} == {AWS_SECURITY_HEADERS}


def test_software_updates_given_a_shared_cache_policy_makes_none_and_caches_with_it() -> None:
    shared: Recorded = build("software-updates", {"cache_policy_id": AWS_CACHING_OPTIMIZED})
    assert not shared.of_type(CACHE) and build("software-updates").of_type(CACHE)
    ordered = shared.one(DISTRIBUTION).inputs["orderedCacheBehaviors"]
    assert ordered and {b["cachePolicyId"] for b in ordered} == {AWS_CACHING_OPTIMIZED}


@pytest.mark.parametrize("case_name", CLOUDFRONT_CASES)
def test_a_policy_id_that_is_no_uuid_is_refused_by_name(case_name: str) -> None:
    case = CASES[case_name]
    with pytest.raises(ComponentArgsError, match="response_headers_policy_id: 'Managed-SecurityHeadersPolicy' is "
                       "not a CloudFront policy id"):
        case.parse_args({**case.example_args, "response_headers_policy_id": "Managed-SecurityHeadersPolicy"})


def test_a_cache_policy_id_that_is_no_uuid_is_refused_by_name() -> None:
    case = CASES["software-updates"]
    with pytest.raises(ComponentArgsError, match="cache_policy_id: 'CachingOptimized' is not a CloudFront policy id"):
        case.parse_args({**case.example_args, "cache_policy_id": "CachingOptimized"})


def test_a_policy_the_account_does_not_hold_is_refused_as_cloudfront_refuses_it() -> None:
    """Under mocks as in the sandbox: a distribution attaching a policy id of no policy of the
    account is refused; one the account made, or one of AWS's, is attached."""
    mocks = SandboxMocks()
    made = mocks.new_resource(pulumi.runtime.MockResourceArgs(
        typ=HEADERS, name="shared", inputs={"securityHeadersConfig": {"contentTypeOptions": {"override": True}}}))[0]

    def distribution(headers: str | None, cache: str = AWS_CACHING_OPTIMIZED) -> pulumi.runtime.MockResourceArgs:
        behaviour = {"targetOriginId": "o", "viewerProtocolPolicy": "redirect-to-https", "cachePolicyId": cache,
                     "allowedMethods": ["GET", "HEAD"], "cachedMethods": ["GET", "HEAD"],
                     "responseHeadersPolicyId": headers}
        return pulumi.runtime.MockResourceArgs(typ=DISTRIBUTION, name="site", inputs={
            "enabled": True, "origins": [{"originId": "o", "domainName": "o.example.com"}],
            "defaultCacheBehavior": behaviour, "restrictions": {"geoRestriction": {"restrictionType": "none"}},
            "viewerCertificate": {"cloudfrontDefaultCertificate": True}})

    with pytest.raises(AwsRefusalError, match="NoSuchResponseHeadersPolicy"):
        mocks.new_resource(distribution(NO_SUCH_POLICY))
    with pytest.raises(AwsRefusalError, match="NoSuchCachePolicy"):
        mocks.new_resource(distribution(made, cache=NO_SUCH_POLICY))
    for attached in (made, AWS_SECURITY_HEADERS):
        mocks.new_resource(distribution(attached))
    assert len(mocks.of_type(DISTRIBUTION)) == 2


def test_the_baseline_makes_one_policy_with_the_cases_security_headers_only_when_asked() -> None:
    plain = build("account-baseline")
    assert not plain.of_type(HEADERS)
    assert "security_headers_policy_id" not in plain.output_names
    baseline = build("account-baseline", {"cloudfront_security_headers": True})
    policy = baseline.one(HEADERS)
    assert "security_headers_policy_id" in baseline.output_names
    assert policy.inputs["securityHeadersConfig"]["frameOptions"]["frameOption"] == \
        defaults.security_headers()["frame_options"]["frame_option"]
    assert policy.inputs["securityHeadersConfig"]["strictTransportSecurity"]["accessControlMaxAgeSec"] == \
        defaults.HSTS_MAX_AGE_SECONDS


@pytest.mark.engine
def test_stacks_past_the_accounts_policy_quota_deploy_on_the_baselines_policy(tmp_path: Path,
                                                                              pulumi_toolchain: str) -> None:
    """With the account's response headers policies at their quota (2 here, 20 on AWS), the next
    stack with a distribution is refused (TooManyResponseHeadersPolicies) unless it attaches the
    baseline's policy; a stack that made its own moves to the shared one, freeing its place; the
    baseline keeps the policy while stacks use it."""
    quota = {rules.QUOTAS_ENV: json.dumps({HEADERS: 2})}
    workspace = Workspace(tmp_path, pulumi_toolchain)
    workspace.new_stack("baseline", "account-baseline", args={"cloudfront_security_headers": True})
    workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "baseline", **quota)
    shared = workspace.outputs("baseline")["security_headers_policy_id"]
    assert shared and [r.id for r in workspace.cloud_records() if r.type == HEADERS] == [shared]
    workspace.new_stack("own", "software-updates")
    workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "own", **quota)
    assert len([r for r in workspace.cloud_records() if r.type == HEADERS]) == 2

    workspace.new_stack("third", "software-updates")
    refused = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "third", check=False, **quota)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "TooManyResponseHeadersPolicies" in said, said[-3000:]

    workspace.set_arg("own", "response_headers_policy_id", shared)
    workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "own", **quota)
    workspace.set_arg("third", "response_headers_policy_id", shared)
    workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "third", **quota)
    assert [r.id for r in workspace.cloud_records() if r.type == HEADERS] == [shared]
    attached = {b.get("responseHeadersPolicyId") for r in workspace.cloud_records() if r.type == DISTRIBUTION
                for b in [r.inputs["defaultCacheBehavior"], *(r.inputs.get("orderedCacheBehaviors") or [])]}
    assert attached == {shared}

    kept = workspace.pulumi("destroy", "--yes", "--stack", "baseline", check=False, **quota)
    assert kept.returncode != 0 and "ResponseHeadersPolicyInUse" in kept.stdout + kept.stderr, kept.stdout[-3000:]
    for stack in ("own", "third", "baseline"):
        workspace.pulumi("destroy", "--yes", "--stack", stack, **quota)
    assert not [r for r in workspace.cloud_records() if r.type == HEADERS]


@pytest.mark.engine
def test_the_service_keeps_a_baseline_whose_policy_stacks_attach(service: Service) -> None:
    """Over REST: a stack attaches the tenant's baseline policy; deleting the baseline is refused
    (409 AccountBaselineInUse, naming the stack) until the stack no longer attaches it."""
    token = service.tenant_token("globex")
    with service.client(token) as client:
        made = client.post("/v1/stacks", json={"name": "baseline", "case": "account-baseline",
                                               "arguments": {"cloudfront_security_headers": True}})
        assert made.status_code == 202 and wait_run(client, made.json()["id"])["status"] == "succeeded"
        shared = client.get("/v1/stacks/baseline").json()["outputs"]["security_headers_policy_id"]
        updates = client.post("/v1/stacks", json={"name": "updates", "case": "software-updates",
                                                  "arguments": {"response_headers_policy_id": shared}})
        assert updates.status_code == 202 and wait_run(client, updates.json()["id"])["status"] == "succeeded"
        refused = client.delete("/v1/stacks/baseline")
        assert refused.status_code == 409 and refused.json()["error"] == "AccountBaselineInUse", refused.text
        assert "'updates'" in refused.json()["detail"]
        moved = client.patch("/v1/stacks/updates", json={"arguments": {"response_headers_policy_id": None}})
        assert moved.status_code == 202 and wait_run(client, moved.json()["id"])["status"] == "succeeded"
        gone = client.delete("/v1/stacks/baseline")
        assert gone.status_code == 202 and wait_run(client, gone.json()["id"])["status"] == "succeeded"
    assert not [r for r in service.cloud_records("globex") if r.type == HEADERS and r.id == shared]
