"""Each tenant deploys as its own AWS identity: its own role for aws stacks (set by an admin),
its own account in the sandbox, and never a resource of another account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import rules
from service import identities
from tests.engine import cloud_records
from tests.mocks import build
from tests.service_harness import Service, wait_run

ROLE = "arn:aws:iam::444455556666:role/acme-deployer"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:{}:listener/app/updates/50dc6c495c0c9188/f2f7dc8efc522ab2"
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:{}:targetgroup/updates/0a1b2c3d4e5f6a7b"


def _error(response: httpx.Response, status: int, kind: str) -> Any:
    assert response.status_code == status, response.text
    assert response.json()["error"] == kind, response.text
    return response.json()["detail"]


def test_each_tenant_has_its_own_stable_sandbox_account() -> None:
    accounts = {identities.sandbox_account(t) for t in ("admin", "acme", "globex", "initech")}
    assert len(accounts) == 4 and rules.ACCOUNT_ID not in accounts
    assert all(len(a) == 12 and a.isdigit() for a in accounts)
    assert identities.sandbox_account("acme") == identities.sandbox_account("acme")


def test_an_argument_naming_a_resource_of_another_account_is_a_problem() -> None:
    args = {"listener_arn": LISTENER.format("111122223333"), "target_group_arn": TARGET_GROUP.format("444455556666"),
            "services": [{"name": "a", "zone": "Z1"}], "sender_email": "arn-like@example.com"}
    assert identities.foreign_resources(args, "444455556666") == [
        "listener_arn: names a resource of account 111122223333; this tenant's stacks of this target are made in "
        "account 444455556666"]
    assert identities.foreign_resources(args, "111122223333")[0].startswith("target_group_arn:")


def test_the_provider_assumes_the_tenants_role_with_its_external_id() -> None:
    identity = identities.AwsIdentity(ROLE, "acme-7f3k")
    assert identity.account == "444455556666"
    assert identity.assume_roles("acme") == [{"roleArn": ROLE, "sessionName": "serverless-cases-acme",
                                              "externalId": "acme-7f3k"}]


@pytest.mark.parametrize("case_name", ["microservices", "premium-content", "software-updates"])
def test_every_regional_provider_deploys_as_the_stacks_role(case_name: str) -> None:
    """CloudFront's us-east-1 parts use explicit providers, which read none of the stack's aws:
    settings: they must carry its role chain, or they would deploy as the engine's caller."""
    chain = [{"roleArn": ROLE, "sessionName": "serverless-cases-acme", "externalId": "acme-7f3k"}]
    rec = build(case_name, {"enable_waf": True}, config={"aws:assumeRoles": json.dumps(chain)})
    providers = rec.of_type("pulumi:providers:aws")
    assert providers, "the case has a us-east-1 provider"
    for provider in providers:
        assert provider.inputs["region"] == "us-east-1"
        roles = provider.inputs["assumeRoles"]
        assert (json.loads(roles) if isinstance(roles, str) else roles) == chain


@pytest.fixture
def service(tmp_path: Path, pulumi_toolchain: str) -> Iterator[Service]:
    svc = Service(tmp_path / "svc", pulumi_toolchain)
    svc.env.update({"AWS_ACCESS_KEY_ID": "AKIASERVICEOWNKEY000", "AWS_SECRET_ACCESS_KEY": "service-own-secret"})
    yield svc.start()
    svc.stop()


@pytest.mark.engine
def test_a_tenants_sandbox_stacks_are_made_in_its_own_account(service: Service) -> None:
    token = service.tenant_token("globex")
    with service.client(token) as api:
        run = wait_run(api, api.post("/v1/stacks", json={"name": "files", "case": "todo-app"}).json()["id"])
        assert run["status"] == "succeeded", run
    account = identities.sandbox_account("globex")
    records = service.cloud_records("globex")
    arns = [arn for r in records if isinstance(arn := r.outputs.get("arn"), str) and arn.startswith("arn:")]
    assert records and arns
    assert {arn.split(":")[4] for arn in arns if arn.split(":")[4]} == {account}
    assert service.cloud_records("admin") == []  # another tenant's account holds none of it
    assert cloud_records(service.data_dir / "sandbox-cloud") == []  # nor the sandbox's shared account


@pytest.mark.engine
def test_aws_stacks_need_the_tenants_own_role_and_only_its_resources(service: Service) -> None:
    token = service.tenant_token("acme")
    updates = {"name": "edge", "case": "software-updates", "target": "aws", "arguments": {
        "load_balancer_dns_name": "updates.internal.example.net", "listener_arn": LISTENER.format("444455556666"),
        "target_group_arn": TARGET_GROUP.format("444455556666")}}
    with service.client(token) as api, service.client() as admin:
        detail = _error(api.post("/v1/stacks", json=updates), 422, "MissingAwsIdentity")
        assert "PUT /v1/tenants/acme/aws-identity" in detail
        _error(api.put("/v1/tenants/acme/aws-identity", json={"role_arn": ROLE}), 403, "Forbidden")
        _error(admin.put("/v1/tenants/acme/aws-identity", json={"role_arn": "arn:aws:iam::1:user/x"}), 422,
               "InvalidRequest")
        _error(admin.put("/v1/tenants/nobody/aws-identity", json={"role_arn": ROLE}), 404, "TenantNotFound")
        _error(admin.get("/v1/tenants/acme/aws-identity"), 404, "AwsIdentityNotSet")

        put = admin.put("/v1/tenants/acme/aws-identity", json={"role_arn": ROLE, "external_id": "acme-7f3k"})
        assert put.status_code == 200, put.text
        assert put.json() == admin.get("/v1/tenants/acme/aws-identity").json() == {
            "tenant": "acme", "role_arn": ROLE, "account": "444455556666", "external_id_set": True,
            "sandbox_account": identities.sandbox_account("acme")}
        assert "acme-7f3k" not in put.text

        foreign = {**updates, "arguments": {**updates["arguments"], "listener_arn": LISTENER.format("111122223333")}}
        problems = _error(api.post("/v1/stacks", json=foreign), 422, "InvalidStackConfig")
        assert problems == ["listener_arn: names a resource of account 111122223333; this tenant's stacks of this "
                            "target are made in account 444455556666"]
        in_sandbox = {**updates, "target": "sandbox"}  # the sandbox account is the tenant's own too
        assert _error(api.post("/v1/stacks", json=in_sandbox), 422, "InvalidStackConfig")[0].startswith(
            "listener_arn: names a resource of account 444455556666")

        accepted = api.post("/v1/stacks", json=updates)
        assert accepted.status_code == 202, accepted.text
        run = wait_run(api, accepted.json()["id"])  # no AWS provider on this machine: the run itself fails
        assert run["status"] == "failed"
        settings = next((service.data_dir / "workspaces").rglob("Pulumi.acme.edge.yaml")).read_text()
        assert ROLE in settings and "acme-7f3k" in settings and "serverless-cases-acme" in settings

        assert admin.delete("/v1/tenants/acme/aws-identity").status_code == 204
        _error(api.patch("/v1/stacks/edge", json={"arguments": {"cache_ttl_seconds": 600}}), 422,
               "MissingAwsIdentity")
        assert "cache_ttl_seconds" not in api.get("/v1/stacks/edge").json()["arguments"]  # nothing half-applied


@pytest.mark.engine
def test_a_queued_run_whose_role_was_removed_does_not_start(tmp_path: Path, pulumi_toolchain: str) -> None:
    svc = Service(tmp_path / "svc", pulumi_toolchain, max_parallel_runs=1)
    svc.env.update({"AWS_ACCESS_KEY_ID": "AKIASERVICEOWNKEY000", "AWS_SECRET_ACCESS_KEY": "service-own-secret"})
    svc.start()
    try:
        with svc.client() as api:
            assert api.put("/v1/tenants/admin/aws-identity", json={"role_arn": ROLE}).status_code == 200
            svc.gate.close()
            holder = api.post("/v1/stacks", json={"name": "holder", "case": "todo-app"}).json()
            svc.gate.wait_held(stack="admin.holder")  # the only run slot is taken
            queued = api.post("/v1/stacks", json={"name": "edge", "case": "software-updates", "target": "aws"})
            assert queued.status_code == 202, queued.text
            assert api.delete("/v1/tenants/admin/aws-identity").status_code == 204
            api.post(f"/v1/runs/{holder['id']}/cancel")
            svc.gate.open()
            run = wait_run(api, queued.json()["id"])
            assert run["status"] == "failed" and run["error"]["error"] == "RunStartFailed", run
            assert "has no AWS role" in run["error"]["detail"]
    finally:
        svc.stop()
