"""Every preview, up and update the service runs is checked by the project's policy pack: a
mandatory violation fails the run with PolicyViolation, advisory ones are listed in its summary,
policy events stream like the others, and an admin's configuration can only tighten."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from programs.targets import REPO_ROOT
from tests.service_harness import Service, describe, sse_events, wait_run

pytestmark = pytest.mark.engine


def _error(response: httpx.Response, status: int, kind: str) -> Any:
    assert response.status_code == status, response.text
    assert response.json()["error"] == kind, response.text
    return response.json()["detail"]


def test_a_bad_policy_configuration_is_refused_before_any_run(service: Service, tmp_path: Path) -> None:
    with service.client() as admin, service.client(service.tenant_token("globex")) as tenant:
        problems = _error(admin.put("/v1/tenants/globex/policies", json={
            "config": {"s3-buckets-tls-only": "disabled", "no-such-policy": "advisory",
                       "waf-protects-distributions": "sometimes"},
            "packs": ["relative/pack", str(tmp_path)]}), 422, "InvalidPolicyConfig")
        assert problems == [
            "s3-buckets-tls-only: a mandatory policy of the project cannot be made disabled",
            problems[1],
            "waf-protects-distributions: 'sometimes' is not an enforcement level (advisory, mandatory, disabled)",
            "packs: 'relative/pack' is not an absolute path",
            f"packs: {str(tmp_path)!r} holds no PulumiPolicy.yaml"]
        assert problems[1].startswith("no-such-policy: no such policy")
        _error(tenant.put("/v1/tenants/globex/policies", json={"config": {}}), 403, "Forbidden")
        assert admin.get("/v1/tenants/globex/policies").json() == {"tenant": "globex", "config": {}, "packs": []}
        assert tenant.get("/v1/stacks").json() == {"items": [], "next_cursor": None}


def test_mandatory_violations_fail_the_run_and_advisory_ones_are_reported(service: Service) -> None:
    with service.client() as api:
        # A stack whose arguments break a mandatory promise: its tables could be deleted.
        created = api.post("/v1/stacks", json={"name": "unguarded", "case": "todo-app",
                                               "arguments": {"deletion_protection": False}})
        assert created.status_code == 202, created.text
        run = wait_run(api, created.json()["id"])
        assert run["status"] == "failed" and run["error"]["error"] == "PolicyViolation", describe(run)
        # The engine stops at the first resource that breaks it (the user pool or the table).
        protection = {"dynamodb-tables-deletion-protection", "cognito-user-pools-deletion-protection"}
        stopped = [v for v in run["summary"]["policy_violations"] if v["level"] == "mandatory"]
        assert stopped and {v["policy"] for v in stopped} <= protection, stopped
        for violation in stopped:  # each listed in the error: policy, resource, message
            assert f"{violation['policy']} (serverless-cases-secure-defaults): {violation['urn']}" in \
                run["error"]["detail"]
        events = [data for event, data in sse_events(api, run["id"]) if data.get("type") == "policy"]
        assert {e["policy"] for e in events if e["level"] == "mandatory"} == {v["policy"] for v in stopped}
        assert all(e["urn"].startswith("urn:pulumi:") and e["message"] and e["pack"] for e in events)
        made = {r.urn for r in service.cloud_records()}
        assert not made & {v["urn"] for v in stopped}  # a resource that breaks a promise is never created

        # The defaults keep every promise; the optional hardening they leave out is reported.
        good = wait_run(api, api.post("/v1/stacks", json={"name": "guarded", "case": "todo-app"}).json()["id"])
        assert good["status"] == "succeeded", describe(good)
        advisories = {(v["policy"], v["level"]) for v in good["summary"]["policy_violations"]}
        assert ("waf-protects-api-stages", "advisory") in advisories
        assert all(level == "advisory" for _, level in advisories)

        # An admin raises an advisory policy for the tenant: the next update must keep it.
        listed = {p["name"]: p for p in api.get("/v1/policies").json()["items"]}
        assert listed["waf-protects-api-stages"]["level"] == "advisory"
        put = api.put("/v1/tenants/admin/policies", json={"config": {"waf-protects-api-stages": "mandatory"}})
        assert put.status_code == 200, put.text
        listed = {p["name"]: p for p in api.get("/v1/policies").json()["items"]}
        assert listed["waf-protects-api-stages"] == {**listed["waf-protects-api-stages"], "level": "mandatory",
                                                     "project_level": "advisory"}
        update = wait_run(api, api.patch("/v1/stacks/guarded", json={"arguments": {"cache_ttl_seconds": 60}})
                          .json()["id"])
        assert update["status"] == "failed" and update["error"]["error"] == "PolicyViolation", describe(update)
        assert "waf-protects-api-stages" in update["error"]["detail"]
        fixed = wait_run(api, api.patch("/v1/stacks/guarded", json={"arguments": {"enable_waf": True}})
                         .json()["id"])
        assert fixed["status"] == "succeeded", describe(fixed)


def test_a_program_that_breaks_promises_is_stopped_through_the_api(tmp_path: Path, pulumi_toolchain: str) -> None:
    from tests.programs.broken_promises import POLICIES_BROKEN

    svc = Service(tmp_path / "svc", pulumi_toolchain)
    svc.env["SERVERLESS_CASES_EXTRA_CASES"] = "tests.programs.broken_promises"
    svc.start()
    try:
        with svc.client() as api:
            up = wait_run(api, api.post("/v1/stacks", json={"name": "broken", "case": "broken-promises"}).json()["id"])
            assert up["status"] == "failed" and up["error"]["error"] == "PolicyViolation", describe(up)
            stopped = {v["urn"] for v in up["summary"]["policy_violations"] if v["level"] == "mandatory"}
            assert stopped and not stopped & {r.urn for r in svc.cloud_records()}  # never created
            extra = str(REPO_ROOT / "tests" / "programs" / "extra_pack")  # the admin adds a pack of the tenant's
            assert api.put("/v1/tenants/admin/policies", json={"packs": [extra]}).status_code == 200
            preview = wait_run(api, api.post("/v1/stacks/broken/preview").json()["id"])
            assert preview["status"] == "failed" and preview["error"]["error"] == "PolicyViolation", describe(preview)
            named = {v["policy"] for v in preview["summary"]["policy_violations"] if v["level"] == "mandatory"}
            assert set(POLICIES_BROKEN) <= named, named
            for policy in POLICIES_BROKEN:
                assert policy in preview["error"]["detail"]
            noted = [v for v in preview["summary"]["policy_violations"] if v["pack"] == "serverless-cases-tests-extra"]
            assert noted and noted[0]["policy"] == "tests-note-buckets" and noted[0]["level"] == "advisory"
    finally:
        svc.stop()
