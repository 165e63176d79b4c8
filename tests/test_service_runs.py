"""Runs: events (live and replayed), cancellation, per-stack ordering, parallel stacks."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.service_harness import Service, describe, sse_events, wait_run


@pytest.fixture
def slow_service(tmp_path: Path, pulumi_toolchain: str) -> Iterator[Service]:
    """Each sandbox create/update/delete takes 150 ms, like a (fast) cloud API."""
    svc = Service(tmp_path / "svc", pulumi_toolchain, sandbox_latency_ms=150, cancel_grace_seconds=60).start()
    yield svc
    svc.stop()


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _create(api: Any, name: str, case: str = "todo-app", **extra: Any) -> dict[str, Any]:
    response = api.post("/v1/stacks", json={"name": name, "case": case, **extra})
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_events_stream_live_and_replay_from_the_start(slow_service: Service) -> None:
    with slow_service.client() as api:
        run = _create(api, "events")
        live: list[tuple[str, dict[str, Any]]] = []
        reader = threading.Thread(target=lambda: live.extend(sse_events(api, run["id"])))
        reader.start()
        wait_run(api, run["id"], until={"running"})
        reader.join(timeout=300)
        assert live[-1] == ("end", {"status": "succeeded"})
        kinds = [name for name, _ in live]
        assert kinds[0] == "prelude" and "resource_pre" in kinds and "summary" in kinds
        assert not [data for name, data in live if name == "diagnostic" and data["severity"] == "debug"], \
            "debug diagnostics (the SDK's tracing, most of a run's events) are not kept"
        sequences = [data["sequence"] for name, data in live[:-1]]
        assert sequences == sorted(sequences)

        late = list(sse_events(api, run["id"]))
        assert late == live  # a late reader gets everything, from the start
        resumed = list(sse_events(api, run["id"], last_event_id="5"))
        assert resumed == live[5:]


def test_queued_run_is_dropped_on_cancel(slow_service: Service) -> None:
    slow_service.gate.close()  # the first run stays in progress until the gate opens
    with slow_service.client() as api:
        first = _create(api, "queue-cancel")
        slow_service.gate.wait_held(stack="admin.queue-cancel")
        second = api.patch("/v1/stacks/queue-cancel", json={"arguments": {"cache_ttl_seconds": 30}}).json()
        assert second["status"] == "queued"
        cancelled = api.post(f"/v1/runs/{second['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
        slow_service.gate.open()
        finished = wait_run(api, first["id"])
        assert finished["status"] == "succeeded", describe(finished)
        dropped = api.get(f"/v1/runs/{second['id']}").json()
        assert dropped["status"] == "cancelled" and dropped["started_at"] is None, describe(dropped)
        assert api.post(f"/v1/runs/{second['id']}/cancel").status_code == 409


def test_running_run_stops_cleanly_and_the_stack_stays_usable(slow_service: Service) -> None:
    slow_service.gate.close(allow=8)  # caught mid-resources: 8 operations done, the rest held
    with slow_service.client() as api:
        run = _create(api, "stop-me", case="blog", arguments={"sender_email": "a@blog.example"})
        slow_service.gate.wait_held(stack="admin.stop-me")
        assert api.post(f"/v1/runs/{run['id']}/cancel").json()["status"] in ("running", "cancelled")
        stopped = wait_run(api, run["id"])  # the engine's cancellation releases the held operations
        assert stopped["status"] == "cancelled" and stopped["error"]["error"] == "Cancelled", describe(stopped)
        assert api.get("/v1/stacks/stop-me").json()["status"] == "cancelled"

        # Consistent: no lock left, and the next change completes the stack.
        locks = slow_service.data_dir / "state" / ".pulumi" / "locks"
        assert not [p for p in locks.rglob("*.json")] if locks.exists() else True
        slow_service.gate.open()
        again = wait_run(api, api.patch("/v1/stacks/stop-me", json={"arguments": {"thumbnail_size": "100x100"}})
                         .json()["id"])
        assert again["status"] == "succeeded", describe(again)
        stack = api.get("/v1/stacks/stop-me").json()
        records = slow_service.cloud_records()
        assert stack["status"] == "ready" and stack["resource_count"] == len(records)


def test_an_up_cancelled_as_it_starts_stops_and_leaves_a_usable_stack(slow_service: Service) -> None:
    """A cancel can land before the stack exists on the backend, or between two CLI calls:
    the run still stops, and the stack can be changed and deleted afterwards."""
    slow_service.gate.close()  # whatever the machine's speed, the up cannot finish before the cancel
    with slow_service.client() as api:
        run = _create(api, "early")
        wait_run(api, run["id"], until={"running"})
        api.post(f"/v1/runs/{run['id']}/cancel")
        stopped = wait_run(api, run["id"])
        assert stopped["status"] == "cancelled", describe(stopped)
        slow_service.gate.open()
        again = wait_run(api, api.patch("/v1/stacks/early", json={"arguments": {"cache_ttl_seconds": 30}}).json()["id"])
        assert again["status"] == "succeeded", describe(again)
        assert api.get("/v1/stacks/early").json()["status"] == "ready"
        gone = wait_run(api, api.delete("/v1/stacks/early", params={"delete_data": "true"}).json()["id"])
        assert gone["status"] == "succeeded", describe(gone)
        assert api.get("/v1/stacks/early").status_code == 404
    assert slow_service.cloud_records() == []


@pytest.mark.long
def test_concurrent_changes_to_one_stack_run_in_order(slow_service: Service) -> None:
    with slow_service.client() as api:
        wait_run(api, _create(api, "ordered")["id"])

        def change(ttl: int) -> dict[str, Any]:
            with slow_service.client() as own:
                response = own.patch("/v1/stacks/ordered", json={"arguments": {"cache_ttl_seconds": ttl}})
                assert response.status_code == 202, response.text
                return dict(response.json())

        with ThreadPoolExecutor(max_workers=6) as pool:
            accepted = list(pool.map(change, [10, 20, 30, 40, 50, 60]))
        runs = sorted((wait_run(api, r["id"]) for r in accepted), key=lambda r: _time(r["queued_at"]))
        assert [r["status"] for r in runs] == ["succeeded"] * 6
        for before, after in itertools.pairwise(runs):
            assert _time(before["finished_at"]) <= _time(after["started_at"])
        ttl_of = {a["id"]: t for a, t in zip(accepted, [10, 20, 30, 40, 50, 60], strict=True)}
        stack = api.get("/v1/stacks/ordered").json()
        assert stack["arguments"]["cache_ttl_seconds"] == ttl_of[runs[-1]["id"]]
        preview = wait_run(api, api.post("/v1/stacks/ordered/preview").json()["id"])
        assert set(preview["summary"]["resource_changes"]) == {"same"}


def test_different_stacks_run_in_parallel(slow_service: Service) -> None:
    slow_service.gate.close()
    with slow_service.client() as api:
        first, second = _create(api, "par-one"), _create(api, "par-two")
        # Both runs are in the middle of their resources at the same moment.
        slow_service.gate.wait_held(stack="admin.par-one")
        slow_service.gate.wait_held(stack="admin.par-two")
        slow_service.gate.open()
        a, b = wait_run(api, first["id"]), wait_run(api, second["id"])
        assert a["status"] == b["status"] == "succeeded", (describe(a), describe(b))
        assert _time(a["started_at"]) < _time(b["finished_at"]) and _time(b["started_at"]) < _time(a["finished_at"])


# blog's first resources are 20 independent operations: the CLI's own default (four per core)
# would let 8 of them start on a 2-core node, and the others wait a whole operation for a slot.
# (16 were seen while the sandbox's provider served 16 calls at a time, not the engine's bound.)
BLOG_FIRST_OPERATIONS = 20


@pytest.mark.parametrize(("setting", "at_once"), [({}, BLOG_FIRST_OPERATIONS), ({"run_parallelism": 3}, 3)])
def test_a_runs_engine_carries_out_as_many_operations_at_once_as_the_setting_allows(
        tmp_path: Path, pulumi_toolchain: str, setting: dict[str, int], at_once: int) -> None:
    svc = Service(tmp_path / "svc", pulumi_toolchain, **setting)
    svc.gate.close()
    svc.start()
    try:
        with svc.client() as api:
            run = _create(api, "wide", case="blog", arguments={"sender_email": "wide@myblog.example"})
            svc.gate.wait_held(at_once, stack="admin.wide")
            time.sleep(2)  # the engine starts no other operation while these are held
            assert len(svc.gate.held()) == at_once
            svc.gate.open()
            done = wait_run(api, run["id"])
            assert done["status"] == "succeeded", describe(done)
    finally:
        svc.stop()


def test_run_summary_has_counts_and_timings(slow_service: Service) -> None:
    with slow_service.client() as api:
        run = wait_run(api, _create(api, "timed")["id"])
        assert run["summary"]["resource_changes"]["create"] > 0
        assert run["duration_seconds"] > 0
        assert json.loads(json.dumps(run))["error"] is None


# In a fresh interpreter: the engine's debug and other logs received while a case is built under
# mocks (the mock engine hands the SDK's Log calls to the logging module), before and after the
# worker's quiet_sdk().
DEBUG_PROBE = """
import json, logging
from tests.mocks import build
from service import engine
received = []
class Count(logging.Handler):
    def emit(self, record):
        if record.name == "root":  # the mock engine's logger (asyncio logs a new loop's selector too)
            received.append(record.levelname)
logging.getLogger().addHandler(Count())
logging.getLogger().setLevel(logging.DEBUG)
def sent():
    build("todo-app", {"deletion_protection": False}, fresh=True)  # a weakened default: warned of
    counts = {level: received.count(level) for level in set(received)}
    received.clear()
    return counts
before = sent()
engine.quiet_sdk()
print(json.dumps({"before": before, "after": sent()}))
"""


def test_a_runs_program_sends_the_engine_no_debug_logs() -> None:
    """Each of the SDK's debug logs (about five per resource) was a synchronous call to the engine,
    which made it an event for the Automation API to read back, all for events that are not kept."""
    import subprocess
    import sys

    from programs.targets import REPO_ROOT

    done = subprocess.run([sys.executable, "-c", DEBUG_PROBE], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["before"].get("DEBUG", 0) > 20, counts  # the probe sees them when they are sent
    assert counts["after"].get("DEBUG", 0) == 0, counts
    assert counts["after"].get("WARNING", 0) == counts["before"].get("WARNING", 0) > 0, "warnings still reach it"


def test_a_stack_past_the_accounts_quota_fails_with_cloudfronts_code(tmp_path: Path, pulumi_toolchain: str) -> None:
    """The service's runs carry the sandbox account's quotas (``SANDBOX_QUOTAS``): with room for
    one response headers policy, the second software-updates stack fails with CloudFront's code."""
    policies = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
    svc = Service(tmp_path / "svc", pulumi_toolchain, sandbox_quotas=json.dumps({policies: 1})).start()
    try:
        with svc.client() as api:
            first = wait_run(api, _create(api, "updates-one", "software-updates")["id"])
            assert first["status"] == "succeeded", describe(first)
            second = wait_run(api, _create(api, "updates-two", "software-updates")["id"])
            assert second["status"] == "failed", describe(second)
            assert "TooManyResponseHeadersPolicies" in json.dumps(second["error"]), describe(second)
    finally:
        svc.stop()
