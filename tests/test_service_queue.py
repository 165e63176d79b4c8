"""The run queue's correctness: what it accepts around a destroy, and what a worker's death is."""

from __future__ import annotations

import os
import signal
import sqlite3
import uuid

import pytest

from tests.service_harness import Service, describe, wait_run

pytestmark = pytest.mark.engine

ENDPOINT_ONLY = {"zone_name": "doomed.example.net",
                 "services": [{"name": "legacy", "kind": "endpoint", "addresses": ["192.0.2.10"]}]}


def _queue_behind(service: Service, destroy_id: str) -> str:
    """A run of the same stack queued after the destroy (as a request accepted in a race would be)."""
    run_id = str(uuid.uuid4())
    with sqlite3.connect(service.data_dir / "service.db") as db:
        db.execute(
            "INSERT INTO runs (id, tenant_id, stack_name, pulumi_stack, kind, status, params, sealed_secrets, summary,"
            " queued_at) SELECT ?, tenant_id, stack_name, pulumi_stack, 'update', 'queued', params, sealed_secrets,"
            " '{}', datetime(queued_at, '+1 second') FROM runs WHERE id = ?", (run_id, destroy_id))
    return run_id


def test_a_stack_being_deleted_accepts_no_other_run_and_nothing_queued_outlives_it(service: Service) -> None:
    with service.client() as api:
        created = api.post("/v1/stacks", json={"name": "doomed", "case": "microservices", "arguments": ENDPOINT_ONLY})
        assert wait_run(api, created.json()["id"])["status"] == "succeeded"
        service.gate.close()
        destroy = api.delete("/v1/stacks/doomed", params={"delete_data": "true"}).json()
        service.gate.wait_held(stack="admin.doomed")
        for method, path, body in [("PATCH", "/v1/stacks/doomed", {"arguments": {"zone_delegated": True}}),
                                   ("POST", "/v1/stacks/doomed/preview", None),
                                   ("POST", "/v1/stacks/doomed/refresh", None),
                                   ("DELETE", "/v1/stacks/doomed", None)]:
            refused = api.request(method, path, json=body)
            assert refused.status_code == 409 and refused.json()["error"] == "StackBeingDeleted", (path, refused.text)
        behind = _queue_behind(service, destroy["id"])
        service.gate.open()
        assert wait_run(api, destroy["id"])["status"] == "succeeded"
        late = wait_run(api, behind)
        assert late["status"] == "cancelled" and late["error"]["error"] == "StackDeleted", describe(late)
        assert api.get("/v1/stacks/doomed").status_code == 404
        assert service.cloud_records() == []  # nothing re-created outside the API
        assert not (service.data_dir / "workspaces" / "admin.doomed").exists()  # nor left on disk
        again = api.post("/v1/stacks", json={"name": "doomed", "case": "microservices", "arguments": ENDPOINT_ONLY})
        assert again.status_code == 202, again.text  # the name is usable again
        assert wait_run(api, again.json()["id"])["status"] == "succeeded"


def _worker_pid(service: Service, run_id: str) -> int:
    with sqlite3.connect(service.data_dir / "service.db") as db:
        (pid,) = db.execute("SELECT worker_pid FROM runs WHERE id = ?", (run_id,)).fetchone()
    return int(pid)


def test_a_worker_that_dies_is_a_failure_not_a_cancel_and_its_stack_is_recovered(service: Service) -> None:
    with service.client() as api:
        service.gate.close(allow=2)
        run = api.post("/v1/stacks", json={"name": "oom", "case": "microservices", "arguments": ENDPOINT_ONLY}).json()
        service.gate.wait_held(stack="admin.oom")
        os.killpg(_worker_pid(service, run["id"]), signal.SIGKILL)  # as the OOM killer would: no cancel asked
        died = wait_run(api, run["id"])
        assert died["status"] == "failed" and died["error"]["error"] == "WorkerFailed", describe(died)
        assert "killed by signal 9" in died["error"]["detail"]
        service.gate.open()
        runs = api.get("/v1/stacks/oom/runs").json()["items"]
        recovery = next(r for r in runs if r["kind"] == "recover")
        assert wait_run(api, recovery["id"])["status"] == "succeeded"
        update = wait_run(api, api.patch("/v1/stacks/oom", json={"arguments": {"zone_delegated": True}}).json()["id"])
        assert update["status"] == "succeeded", describe(update)


def test_lists_come_a_page_at_a_time(service: Service) -> None:
    service.gate.close()  # runs stay in progress or queued: the stacks exist, nothing is deployed
    with service.client() as api:
        names = [f"paged-{i}" for i in range(5)]
        runs = [api.post("/v1/stacks", json={"name": n, "case": "microservices", "arguments": ENDPOINT_ONLY}).json()
                for n in names]
        seen, cursor = [], None
        while True:
            page = api.get("/v1/stacks", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            assert len(page["items"]) <= 2
            seen += [s["name"] for s in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == names  # by name, each once
        newest = api.get("/v1/runs", params={"limit": 3}).json()
        rest = api.get("/v1/runs", params={"limit": 3, "cursor": newest["next_cursor"]}).json()
        assert [r["id"] for r in newest["items"] + rest["items"]] == [r["id"] for r in reversed(runs)]
        assert rest["next_cursor"] is None
        assert api.get("/v1/stacks/paged-0/runs", params={"limit": 1}).json()["items"][0]["id"] == runs[0]["id"]
        for bad in ({"cursor": "not-a-cursor"}, {"limit": 0}, {"limit": 1001}):
            refused = api.get("/v1/stacks", params=bad)
            assert refused.status_code == 422 and refused.json()["error"] in ("InvalidCursor", "InvalidRequest"), bad
        for run in runs:
            api.post(f"/v1/runs/{run['id']}/cancel")
        service.gate.open()
        assert all(wait_run(api, r["id"])["status"] == "cancelled" for r in runs)
