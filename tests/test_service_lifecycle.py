"""The whole lifecycle of every case through HTTP, on the real engine and the sandbox."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from components import CASES
from tests.service_harness import Service, wait_run

CHANGES = {"todo-app": {"cache_ttl_seconds": 45}, "blog": {"thumbnail_size": "320x240"},
           "software-updates": {"cache_ttl_seconds": 7200}, "premium-content": {"signed_url_expiry_seconds": 90},
           "big-data-ingestion": {"bytes_scanned_cutoff": 20_000_000},
           "microservices": {"services": [{"name": "orders", "kind": "api"}, {"name": "www", "kind": "static"},
                                          {"name": "legacy", "kind": "endpoint", "addresses": ["192.0.2.10", "192.0.2.13"]}]},
           "account-baseline": {"tags": {"team": "platform"}}}


def test_every_case_has_a_change_to_exercise() -> None:
    assert set(CHANGES) == set(CASES)


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_stack_lifecycle_over_http(service: Service, case_name: str) -> None:
    case = CASES[case_name]
    name = f"life-{case_name}"
    with service.client() as api:
        created = api.post("/v1/stacks", json={"name": name, "case": case_name, "arguments": dict(case.example_args)})
        assert created.status_code == 202 and created.json()["kind"] == "up"
        assert wait_run(api, created.json()["id"])["status"] == "succeeded"
        stack = api.get(f"/v1/stacks/{name}").json()
        assert stack["status"] == "ready" and stack["target"] == "sandbox" and stack["resource_count"] > 0
        for output in case.outputs:
            assert stack["outputs"].get(output) not in (None, "", [], {}), output

        # The same stack, seen by the plain CLI on the same backend.
        listed = service.cli(stack["pulumi_stack"], "stack", "ls", "--json")
        assert stack["pulumi_stack"] in [s["name"] for s in json.loads(listed.stdout)], listed.stderr
        cli_outputs = json.loads(service.cli(stack["pulumi_stack"], "stack", "output", "--json", "-s",
                                             stack["pulumi_stack"]).stdout)
        assert {k: v for k, v in cli_outputs.items() if k in case.outputs} == \
            {k: v for k, v in stack["outputs"].items() if k in case.outputs}

        updated = api.patch(f"/v1/stacks/{name}", json={"arguments": CHANGES[case_name]})
        assert updated.status_code == 202 and updated.json()["kind"] == "update"
        update = wait_run(api, updated.json()["id"])
        assert update["status"] == "succeeded" and update["summary"]["resource_changes"].get("update", 0) >= 1
        assert api.get(f"/v1/stacks/{name}").json()["arguments"] == {**case.example_args, **CHANGES[case_name]}

        preview = wait_run(api, api.post(f"/v1/stacks/{name}/preview").json()["id"])
        assert preview["status"] == "succeeded"
        assert set(preview["summary"]["resource_changes"]) == {"same"} and preview["summary"]["changes"] == []

        refresh = wait_run(api, api.post(f"/v1/stacks/{name}/refresh").json()["id"])
        assert refresh["status"] == "succeeded" and refresh["summary"]["drifted"] is False

        if case.protects_data:  # its tables and user pools are kept unless the caller chooses to lose them
            refused = api.delete(f"/v1/stacks/{name}")
            assert refused.status_code == 409 and refused.json()["error"] == "DeletionProtected", refused.text
            assert api.get(f"/v1/stacks/{name}").json()["status"] == "ready"
        deleted = api.delete(f"/v1/stacks/{name}", params={"delete_data": "true"})
        assert deleted.status_code == 202 and deleted.json()["kind"] == "destroy"
        assert wait_run(api, deleted.json()["id"])["status"] == "succeeded"
        assert api.get(f"/v1/stacks/{name}").status_code == 404
        assert service.cloud_records() == []


def test_preview_reports_planned_changes_and_refresh_reports_drift(service: Service) -> None:
    with service.client() as api:
        assert wait_run(api, api.post("/v1/stacks", json={"name": "drifty", "case": "todo-app"}).json()["id"])[
            "status"] == "succeeded"
        cloud = service.data_dir / "sandbox-cloud"
        table = next(p for p in cloud.rglob("*.json") if json.loads(p.read_text())["type"] == "aws:dynamodb/table:Table")
        record = json.loads(table.read_text())
        for side in ("inputs", "outputs"):
            record[side]["pointInTimeRecovery"] = {"enabled": False}
        table.write_text(json.dumps(record))

        refresh = wait_run(api, api.post("/v1/stacks/drifty/refresh").json()["id"])
        assert refresh["summary"]["drifted"] is True
        assert [d["type"] for d in refresh["summary"]["drift"]] == ["aws:dynamodb/table:Table"]

        preview = wait_run(api, api.post("/v1/stacks/drifty/preview").json()["id"])
        assert preview["summary"]["resource_changes"].get("update") == 1
        (change,) = preview["summary"]["changes"]
        assert change["type"] == "aws:dynamodb/table:Table" and "pointInTimeRecovery" in change["diffs"]


def test_a_service_whose_port_was_taken_before_it_started_starts_on_another(tmp_path: Path,
                                                                           pulumi_toolchain: str) -> None:
    # The test harness's guarantee: a free port can be taken (a client's connection gets one from
    # the same range) before the service binds it; the test must not fail on that.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        service = Service(tmp_path / "svc", pulumi_toolchain)
        service.use_port(taken.getsockname()[1])
        service.start()
        try:
            assert service.port != taken.getsockname()[1]
            with service.client() as api:
                assert api.get("/healthz").status_code == 200
        finally:
            service.stop()
