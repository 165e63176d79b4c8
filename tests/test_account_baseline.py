"""The account baseline: API Gateway's CloudWatch role, set once per account and region, without
which AWS refuses every REST API stage that logs (the cases with a REST API log by default)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from components import CASES
from components.catalog import BASELINE, needing
from sandbox.cloud import API_GATEWAY_SETTINGS
from sandbox.mocks import AwsRefusalError, SandboxMocks, build_case
from tests.engine import Workspace
from tests.mocks import build, statements
from tests.service_harness import Service, wait_run

NEW_ACCOUNT_REFUSAL = "CloudWatch Logs role ARN must be set in account settings to enable logging"


@pytest.mark.parametrize("case_name", sorted(set(CASES) - {BASELINE}))
def test_a_new_account_refuses_exactly_the_cases_that_name_the_baseline(case_name: str) -> None:
    """The cases that say they need the baseline (GET /v1/cases, the README) are those a new account refuses."""
    case = CASES[case_name]
    try:
        build_case(case, dict(case.example_args), SandboxMocks(account_set_up=False))
    except AwsRefusalError as exc:
        assert case_name in needing(BASELINE), f"{case_name} needs the baseline but does not say so: {exc}"
        assert "BadRequestException" in str(exc) and NEW_ACCOUNT_REFUSAL in str(exc)
    else:
        assert case_name not in needing(BASELINE), f"{case_name} deploys in a new account: it needs no baseline"


def test_the_baseline_deploys_in_a_new_account() -> None:
    case = CASES["account-baseline"]
    assert build_case(case, {}, SandboxMocks(account_set_up=False)) == ["api_gateway_cloudwatch_role_arn"]


def test_only_api_gateway_assumes_the_role_and_it_writes_only_this_accounts_logs_in_this_region() -> None:
    baseline = build("account-baseline")
    role = baseline.named("account-baseline-api-gateway-logs", "aws:iam/role:Role")
    (trust,) = statements(role, "assumeRolePolicy")
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    (granted,) = statements(baseline.named("account-baseline-api-gateway-logs", "aws:iam/rolePolicy:RolePolicy"))
    assert granted["Resource"] == ["arn:aws:logs:us-east-1:123456789012:*"]
    assert all(action.startswith("logs:") for action in granted["Action"]) and "logs:PutLogEvents" in granted["Action"]
    assert not baseline.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")  # no broad managed policy
    settings = baseline.one(API_GATEWAY_SETTINGS)
    assert settings.inputs["cloudwatchRoleArn"] == role.outputs["arn"]


@pytest.mark.engine
def test_a_rest_api_case_deploys_in_a_new_account_once_its_baseline_is_deployed(tmp_path: Path,
                                                                                pulumi_toolchain: str) -> None:
    workspace = Workspace(tmp_path, pulumi_toolchain, account_set_up=False)
    workspace.new_stack("app", "todo-app")
    refused = workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "app", check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "BadRequestException" in said and NEW_ACCOUNT_REFUSAL in said, said[-3000:]

    workspace.new_stack("baseline", "account-baseline")
    workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "baseline")
    role = workspace.outputs("baseline")["api_gateway_cloudwatch_role_arn"]
    [settings] = [r for r in workspace.cloud_records() if r.type == API_GATEWAY_SETTINGS]
    assert settings.outputs["cloudwatchRoleArn"] == role

    workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "app")  # carries on where it was refused
    assert workspace.outputs("app")["api_url"].startswith("https://")

    # Destroying the baseline resets the account's setting (the AWS provider's delete): a new stage
    # with logging is refused again (the catalogue's rule).
    workspace.pulumi("destroy", "--yes", "--skip-preview", "--stack", "baseline")
    assert not [r for r in workspace.cloud_records() if r.type == API_GATEWAY_SETTINGS]


def _refused(response: httpx.Response, kind: str) -> str:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == kind, body
    return str(body["detail"])


@pytest.mark.engine
def test_a_tenant_has_one_account_baseline_kept_while_its_rest_apis_need_it(service: Service) -> None:
    token = service.tenant_token("initech", account_set_up=False)  # a new account: nothing set up
    with service.client(token) as client:
        assert client.get("/v1/cases/todo-app").json()["needs"] == [BASELINE]  # what a client learns first
        assert client.get("/v1/cases/software-updates").json()["needs"] == []
        app = client.post("/v1/stacks", json={"name": "app", "case": "todo-app"})
        assert app.status_code == 202, app.text
        failed = wait_run(client, app.json()["id"])
        assert failed["status"] == "failed" and failed["error"]["error"] == "DeploymentFailed", failed
        assert NEW_ACCOUNT_REFUSAL in failed["error"]["detail"] and "account-baseline" in failed["error"]["detail"]

        accepted = client.post("/v1/stacks", json={"name": "baseline", "case": "account-baseline"})
        assert accepted.status_code == 202, accepted.text
        assert wait_run(client, accepted.json()["id"])["status"] == "succeeded"
        detail = _refused(client.post("/v1/stacks", json={"name": "baseline-2", "case": "account-baseline"}),
                          "AccountBaselineExists")
        assert "'baseline'" in detail

        again = client.patch("/v1/stacks/app", json={"arguments": {"cache_ttl_seconds": 60}})
        assert again.status_code == 202, again.text
        assert wait_run(client, again.json()["id"])["status"] == "succeeded"  # deploys in the new account now
        assert "'app'" in _refused(client.delete("/v1/stacks/baseline"), "AccountBaselineInUse")

        gone = client.delete("/v1/stacks/app", params={"delete_data": "true"})
        assert wait_run(client, gone.json()["id"])["status"] == "succeeded"
        destroyed = client.delete("/v1/stacks/baseline")
        assert destroyed.status_code == 202, destroyed.text
        assert wait_run(client, destroyed.json()["id"])["status"] == "succeeded"
    assert service.cloud_records("initech") == []  # the account's setting is reset with it
