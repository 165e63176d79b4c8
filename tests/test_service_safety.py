"""Tenants, crash recovery, secrets and errors: the service's promises under pressure."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service_harness import ADMIN_TOKEN, Service, describe, sse_events, until, wait_run


@pytest.fixture
def service(tmp_path: Path, pulumi_toolchain: str) -> Iterator[Service]:
    svc = Service(tmp_path / "svc", pulumi_toolchain, sandbox_latency_ms=100).start()
    yield svc
    svc.stop()


def _error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == kind and body["detail"], body
    return dict(body)


def test_a_tenant_sees_and_touches_only_its_own_stacks(service: Service) -> None:
    other = service.tenant_token("globex")
    with service.client() as owner, service.client(other) as intruder:
        run = owner.post("/v1/stacks", json={"name": "private", "case": "todo-app"}).json()
        wait_run(owner, run["id"])
        assert intruder.get("/v1/stacks").json() == {"items": [], "next_cursor": None}
        for method, path, body in [
            ("GET", "/v1/stacks/private", None), ("PATCH", "/v1/stacks/private", {"arguments": {}}),
            ("POST", "/v1/stacks/private/preview", None), ("POST", "/v1/stacks/private/refresh", None),
            ("DELETE", "/v1/stacks/private", None), ("GET", "/v1/stacks/private/runs", None),
        ]:
            _error(intruder.request(method, path, json=body), 404, "StackNotFound")
        for method, path in [("GET", f"/v1/runs/{run['id']}"), ("POST", f"/v1/runs/{run['id']}/cancel"),
                             ("GET", f"/v1/runs/{run['id']}/events")]:
            _error(intruder.request(method, path), 404, "RunNotFound")
        # The same name is free in another tenant: names are per tenant.
        theirs = intruder.post("/v1/stacks", json={"name": "private", "case": "todo-app"})
        assert theirs.status_code == 202
        assert wait_run(intruder, theirs.json()["id"])["status"] == "succeeded"
        assert owner.get("/v1/stacks/private").json()["pulumi_stack"] == "admin.private"
        assert intruder.get("/v1/stacks/private").json()["pulumi_stack"] == "globex.private"
        _error(intruder.post("/v1/tenants", json={"name": "evil"}), 403, "Forbidden")


def test_an_up_whose_node_was_killed_is_carried_through_when_the_node_comes_back(service: Service) -> None:
    run = _start_and_hold_mid_run(service, "crashy", resources_done=10)
    service.kill()
    service.gate.open()
    service.start()
    with service.client() as api:
        carried = wait_run(api, run["id"])
        assert carried["status"] == "succeeded" and carried["recovered"] is True, describe(carried)
        assert [r["kind"] for r in api.get("/v1/stacks/crashy/runs").json()["items"]] == ["up"]
        stack = api.get("/v1/stacks/crashy").json()
        assert stack["status"] == "ready" and stack["resource_count"] == len(service.cloud_records())
        again = api.patch("/v1/stacks/crashy", json={"arguments": {"cache_ttl_seconds": 90}}).json()
        assert wait_run(api, again["id"])["status"] == "succeeded"
        assert api.get("/v1/stacks/crashy").json()["status"] == "ready"
    locks = service.data_dir / "state" / ".pulumi" / "locks"
    assert not list(locks.rglob("*.json")) if locks.exists() else True


def _start_and_hold_mid_run(service: Service, name: str, resources_done: int) -> dict[str, Any]:
    """An up of todo-app that has done ``resources_done`` sandbox operations and is held in the
    middle of the next ones (the sandbox's gate), however fast or slow the machine is."""
    service.gate.close(allow=resources_done)
    with service.client() as api:
        run = api.post("/v1/stacks", json={"name": name, "case": "todo-app"}).json()
    service.gate.wait_held(stack=f"admin.{name}")
    return dict(run)


def test_recovery_survives_state_metadata_a_crash_left_half_written(service: Service) -> None:
    _start_and_hold_mid_run(service, "torn", resources_done=5)
    service.crash()
    service.gate.open()
    # The file backend's blob library writes each state file's metadata sidecar in place: a
    # crash inside that write leaves it empty, and then no command can read the stack.
    state = service.data_dir / "state"
    checkpoint = service.checkpoint_file("admin.torn")
    Path(f"{checkpoint}.attrs").write_bytes(b"")
    assert "failed to load checkpoint" in service.cli("admin.torn", "stack", "output", "-s", "admin.torn").stderr
    service.start()
    with service.client() as api:
        up = api.get("/v1/stacks/torn/runs").json()["items"][0]
        carried = wait_run(api, up["id"])
        assert carried["status"] == "succeeded" and carried["recovered"], describe(carried)
        update = api.patch("/v1/stacks/torn", json={"arguments": {"cache_ttl_seconds": 45}}).json()
        assert wait_run(api, update["id"])["status"] == "succeeded"
        assert api.get("/v1/stacks/torn").json()["status"] == "ready"
    assert service.cli("admin.torn", "stack", "output", "-s", "admin.torn").returncode == 0
    assert not list(state.rglob("*.attrs")), "the service's file backend writes no metadata sidecars"


def test_a_run_that_outlived_the_killed_service_is_stopped_cleanly_before_recovery(tmp_path: Path,
                                                                                    pulumi_toolchain: str) -> None:
    service = Service(tmp_path / "svc", pulumi_toolchain, sandbox_latency_ms=1500).start()
    try:
        run = _start_and_hold_mid_run(service, "outlived", resources_done=3)
        orphans = {pid for pid in service.workers() if _leads_an_engine(pid)}
        assert orphans, "the run has a worker leading an engine"
        service.kill()  # the service only: its worker sees its parent gone and stops its engine cleanly
        service.start()  # stopping cleanly signals the engine's cancellation: held operations finish
        service.gate.open()
        with service.client() as api:
            carried = wait_run(api, run["id"])
            assert carried["status"] == "succeeded" and carried["recovered"], describe(carried)
            assert not orphans & set(service.workers())
            stack = api.get("/v1/stacks/outlived").json()
        # Stopped with SIGINT, the engine finished and saved the creates in flight: every
        # resource in the (sandbox) cloud is in the stack, none is forgotten.
        records = service.cloud_records()
        assert stack["status"] == "ready" and stack["resource_count"] == len(records)
        assert "did not stop within the grace period" not in service.log_path.read_text()
    finally:
        service.stop()


def _leads_an_engine(worker: int) -> bool:
    """Whether a worker runs a Pulumi CLI (a run's worker, not the fork server)."""
    children = " ".join(Path(f"/proc/{worker}/task/{worker}/children").read_text().split())
    return any(Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].endswith(b"pulumi")
               for child in children.split())


def test_restart_keeps_stacks_runs_and_events(service: Service) -> None:
    with service.client() as api:
        run = api.post("/v1/stacks", json={"name": "durable", "case": "todo-app"}).json()
        wait_run(api, run["id"])
        before = list(sse_events(api, run["id"]))
    service.stop()
    service.start()
    with service.client() as api:
        assert api.get("/v1/stacks/durable").json()["status"] == "ready"
        assert list(sse_events(api, run["id"])) == before


SECRET = "hidden-sender-7f3a@secret.example"
ROTATED = 'rotated-"wörd"\\91c2@secret.example'  # quotes, a backslash, non-ASCII: escaped in JSON and Go


def test_secret_arguments_and_outputs_never_appear_in_clear(service: Service) -> None:
    with service.client() as api:
        seen: list[str] = []
        created = api.post("/v1/stacks", json={"name": "quiet", "case": "blog",
                                                "secret_arguments": {"sender_email": SECRET}})
        seen.append(created.text)
        run = wait_run(api, created.json()["id"])
        assert run["status"] == "succeeded"
        stack = api.get("/v1/stacks/quiet")
        seen.append(stack.text)
        assert stack.json()["arguments"]["sender_email"] == "[secret]"
        assert stack.json()["outputs"]["sender_identity"] == "[secret]"
        seen += [str(e) for e in sse_events(api, run["id"])]
        updated = api.patch("/v1/stacks/quiet", json={"secret_arguments": {"sender_email": ROTATED},
                                                      "arguments": {"thumbnail_size": "64x64"}})
        seen.append(updated.text)
        wait_run(api, updated.json()["id"])
        plain_only = api.patch("/v1/stacks/quiet", json={"arguments": {"thumbnail_size": "80x80"}})
        assert wait_run(api, plain_only.json()["id"])["status"] == "succeeded"  # the stored secret is kept
        assert api.get("/v1/stacks/quiet").json()["outputs"]["sender_identity"] == "[secret]"
        preview = wait_run(api, api.post("/v1/stacks/quiet/preview").json()["id"])
        seen += [str(preview)] + [str(e) for e in sse_events(api, preview["id"])]
        failed = api.patch("/v1/stacks/quiet", json={"arguments": {"thumbnail_size": "1x1"}})  # invalid: 422
        seen.append(failed.text)
        # A run that fails because of the secret: a second blog with the same sender collides on
        # the SES identity, whose id *is* the address; the failure must still not show it.
        clash = api.post("/v1/stacks", json={"name": "clash", "case": "blog",
                                             "secret_arguments": {"sender_email": ROTATED}})
        clash_run = wait_run(api, clash.json()["id"])
        assert clash_run["status"] == "failed" and "[secret]" in clash_run["error"]["detail"]
        seen += [str(clash_run)] + [str(e) for e in sse_events(api, clash_run["id"])]
        seen.append(api.get("/v1/stacks/quiet").text)
        seen.append(api.get("/v1/stacks/quiet/runs").text)
    service.stop()
    everything = "\n".join(seen) + service.log_path.read_text()
    with sqlite3.connect(service.data_dir / "service.db") as db:
        for table in ("stacks", "runs", "run_events", "api_tokens"):
            everything += "\n".join(str(row) for row in db.execute(f"SELECT * FROM {table}"))  # noqa: S608
    for secret in (SECRET, ROTATED, ADMIN_TOKEN):
        for spelling in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
                         repr(secret)[1:-1]):
            assert spelling not in everything
    assert (service.data_dir / "passphrase").read_text() not in everything


def test_documented_errors(service: Service) -> None:
    with service.client() as api:
        wait_run(api, api.post("/v1/stacks", json={"name": "taken", "case": "todo-app"}).json()["id"])
        _error(api.get("/v1/stacks/absent"), 404, "StackNotFound")
        _error(api.get("/v1/cases/no-such-case"), 404, "UnknownCase")
        _error(api.post("/v1/stacks", json={"name": "newone", "case": "no-such-case"}), 404, "UnknownCase")
        _error(api.get("/v1/runs/00000000-0000-0000-0000-000000000000"), 404, "RunNotFound")
        _error(api.post("/v1/stacks", json={"name": "taken", "case": "todo-app"}), 409, "StackExists")
        _error(api.post("/v1/stacks", json={"name": "../etc", "case": "todo-app"}), 422, "InvalidStackName")
        _error(api.get("/v1/stacks/Bad%20Name"), 422, "InvalidStackName")
        invalid = _error(api.post("/v1/stacks", json={"name": "badargs", "case": "todo-app",
                                                      "arguments": {"cache_ttl_seconds": -1, "nope": 1}}),
                         422, "InvalidStackConfig")
        assert set(invalid["detail"]) == {"cache_ttl_seconds: -1 is outside 0..3600", "nope: unknown field"}
        _error(api.patch("/v1/stacks/taken", json={"target": "aws"}), 422, "TargetChange")
        assert api.get("/v1/stacks/badargs").status_code == 404  # nothing half-created
    _error(httpx.get(f"{service.base_url}/v1/stacks"), 401, "Unauthorized")
    _error(httpx.get(f"{service.base_url}/v1/stacks", headers={"Authorization": "Bearer sc_wrong"}), 401,
           "Unauthorized")


def test_aws_target_without_credentials_is_refused(tmp_path: Path, pulumi_toolchain: str) -> None:
    svc = Service(tmp_path / "svc", pulumi_toolchain)
    for key in [k for k in svc.env if k.startswith("AWS_")]:
        del svc.env[key]
    svc.env.update({"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
                    "AWS_EC2_METADATA_DISABLED": "true"})
    svc.start()
    try:
        with svc.client() as api:
            _error(api.post("/v1/stacks", json={"name": "cloudy", "case": "todo-app", "target": "aws"}), 422,
                   "MissingCredentials")
            assert api.get("/v1/stacks/cloudy").status_code == 404
    finally:
        svc.stop()


def test_missing_toolchain_is_a_503(tmp_path: Path) -> None:
    empty = tmp_path / "no-toolchain"
    empty.mkdir()
    svc = Service(tmp_path / "svc", str(empty)).start()
    try:
        ready = httpx.get(f"{svc.base_url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["toolchain"] != "ok"
        with svc.client() as api:
            _error(api.post("/v1/stacks", json={"name": "nochain", "case": "todo-app"}), 503, "ToolchainMissing")
            assert api.get("/v1/stacks/nochain").status_code == 404
    finally:
        svc.stop()
    # A node that only accepts work runs nothing itself: it needs no toolchain.
    api_only = Service(tmp_path / "svc", str(empty), roles="api").start()
    try:
        ready = httpx.get(f"{api_only.base_url}/readyz")
        assert ready.status_code == 200 and "toolchain" not in ready.json()["checks"], ready.text
        with api_only.client() as api:
            accepted = api.post("/v1/stacks", json={"name": "accepted", "case": "todo-app"})
            assert accepted.status_code == 202 and accepted.json()["status"] == "queued", accepted.text
    finally:
        api_only.stop()


def test_health_needs_no_token_and_readiness_checks_everything(service: Service) -> None:
    assert httpx.get(f"{service.base_url}/healthz").json() == {"status": "ok", "checks": {}}
    ready = httpx.get(f"{service.base_url}/readyz").json()
    assert ready == {"status": "ok", "checks": {"toolchain": "ok", "backend": "ok", "store": "ok", "scheduler": "ok"}}


def test_readiness_writes_nothing_and_starts_no_process(tmp_path: Path, pulumi_toolchain: str) -> None:
    """It is unauthenticated and probed often: it must cost nothing and change nothing."""
    counted = tmp_path / "toolchain"  # the real toolchain, with every start of `pulumi` counted
    counted.mkdir()
    calls = tmp_path / "pulumi-calls"
    (counted / "pulumi").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {pulumi_toolchain}/pulumi "$@"\n')
    (counted / "pulumi").chmod(0o755)
    for helper in Path(pulumi_toolchain).iterdir():
        if helper.name != "pulumi":
            (counted / helper.name).symlink_to(helper)
    service = Service(tmp_path / "svc", str(counted), warm_worker="false").start()
    try:
        database = service.data_dir / "service.db"

        def snapshot() -> tuple[Any, ...]:
            with sqlite3.connect(database) as db:
                tenants = db.execute("SELECT id FROM tenants ORDER BY id").fetchall()
            files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in service.data_dir.glob("service.db*"))
            return tenants, sorted(p.name for p in (service.data_dir / "state").rglob("*")), files

        before = snapshot()
        for _ in range(20):
            assert httpx.get(f"{service.base_url}/readyz").status_code == 200
        assert snapshot() == before
        assert not calls.exists(), calls.read_text()
    finally:
        service.stop()


def _run_workers(service: Service) -> set[int]:
    """The service's workers other than its fork server."""
    found = set()
    for pid in service.workers():
        try:
            if b"forkserver" not in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                found.add(pid)
        except OSError:
            continue
    return found


def test_a_run_that_cannot_start_fails_typed_and_the_others_go_on(tmp_path: Path, pulumi_toolchain: str) -> None:
    """A queued run whose secret arguments no longer open (the passphrase changed) fails with
    RunStartFailed; scheduling goes on and readiness still reports a live scheduler."""
    data = tmp_path / "svc"
    accepting = Service(data, pulumi_toolchain, roles="api", passphrase="the-first-passphrase").start()
    try:
        with accepting.client() as api:
            sealed = api.post("/v1/stacks", json={"name": "sealed", "case": "blog",
                                                  "secret_arguments": {"sender_email": "a@blog.example"}}).json()
            assert sealed["status"] == "queued"
    finally:
        accepting.stop()
    svc = Service(data, pulumi_toolchain, passphrase="a-new-passphrase").start()
    try:
        with svc.client() as api:
            failed = wait_run(api, sealed["id"])
            assert failed["status"] == "failed" and failed["error"]["error"] == "RunStartFailed", failed
            assert "passphrase" in failed["error"]["detail"]
            assert until(lambda: not _run_workers(svc)), "the run that could not start left its worker behind"
            other = wait_run(api, api.post("/v1/stacks", json={"name": "other", "case": "software-updates"})
                             .json()["id"])
            assert other["status"] == "succeeded", other
        assert httpx.get(f"{svc.base_url}/readyz").json()["checks"]["scheduler"] == "ok"
    finally:
        svc.stop()
