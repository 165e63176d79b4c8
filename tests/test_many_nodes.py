"""Many nodes: two service processes, with their own ports and node ids, on one PostgreSQL
database (service tables, run engine, Pulumi's state backend) and one sandbox cloud.

PostgreSQL comes from ``toolchain/ensure-postgres.sh`` (``make postgres``, run by ``make test``):
without it these tests fail, they never skip."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import sqlalchemy
from sqlalchemy import select, update

from programs.targets import REPO_ROOT
from service.db import Database, Node
from service.identities import sandbox_account
from service.nodes import Leases
from tests.engine import cloud_records
from tests.service_harness import Gate, Service, alive, describe, wait_run

PASSPHRASE = "fleet passphrase shared by every node"


class Link:
    """A TCP link to PostgreSQL that a test can break and mend: a network partition between one
    node and the service database. Broken by a reset, every connection is closed and new ones are
    refused; gone silent, it holds what is sent either way (a link dropping packets) until mended."""

    def __init__(self, database: str) -> None:
        parsed = urlsplit(database)
        self._target = (parsed.hostname or "127.0.0.1", parsed.port or 5432)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._cut = threading.Event()
        self._mended = threading.Event()
        self._mended.set()
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database: str, scheme: str) -> str:
        parsed = urlsplit(database)
        user = f"{parsed.username}@" if parsed.username else ""
        return urlunsplit(parsed._replace(scheme=scheme, netloc=f"{user}127.0.0.1:{self.port}"))

    def break_(self, how: str) -> None:
        """``reset`` or ``silent``."""
        if how == "silent":
            self._mended.clear()
            return
        with self._lock:
            self._cut.set()
            for sock in self._open:
                _drop(sock)
            self._open.clear()

    def mend(self) -> None:
        self._cut.clear()
        self._mended.set()

    def close(self) -> None:
        self._server.close()
        self.mend()
        self.break_("reset")

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                if self._cut.is_set():
                    raise OSError("cut")
                upstream = socket.create_connection(self._target)
            except OSError:
                _drop(client)
                continue
            with self._lock:
                if self._cut.is_set():  # broken while this connection was being made
                    _drop(client)
                    _drop(upstream)
                    continue
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self._mended.wait()
                sink.sendall(data)
        _drop(source)
        _drop(sink)


def _drop(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class Fleet:
    def __init__(self, root: Path, toolchain: str, database: str, links: dict[str, Link] | None = None,
                 **settings: Any) -> None:
        """Two nodes on ``database``; a node named in ``links`` reaches the service database (not the
        state backend) through its link."""
        self.cloud = root / "sandbox-cloud"
        self.gate = Gate(root / "gate")
        self.database = database
        host_part = database.removeprefix("postgresql://")
        # A lease of 10 s: under the load of these tests on 2 cores a healthy node's renewal was
        # seen to come 3-4 s late, and a node that misses its lease stops its engines.
        shared = {"fleet": "true", "database_url": f"postgresql+psycopg://{host_part}",
                  "backend_url": f"postgres://{host_part}?sslmode=disable", "passphrase": PASSPHRASE,
                  "sandbox_cloud": str(self.cloud), "sandbox_gate_dir": str(self.gate.folder),
                  "node_lease_seconds": 10, "node_grace_seconds": 5, "max_parallel_runs": 2, **settings}
        self.nodes = {name: Service(root / name, toolchain, node_id=name, **{**shared, **(
            {"database_url": links[name].url(database, "postgresql+psycopg")} if links and name in links else {})})
            for name in ("node-a", "node-b")}

    def __getitem__(self, name: str) -> Service:
        return self.nodes[name]

    def state_keys(self, stack: str) -> list[str]:
        """The keys of the stack's checkpoints in the shared PostgreSQL state backend."""
        with psycopg.connect(self.database) as connection:
            rows = connection.execute("SELECT key FROM pulumi_state WHERE key LIKE %s ORDER BY key",
                                      (f"%/{stack}.json%",)).fetchall()
        return [key for (key,) in rows]

    def records(self, tenant: str = "admin") -> list[Any]:
        return cloud_records(self.cloud, sandbox_account(tenant))

    def hold_an_up(self, name: str, allow: int) -> tuple[dict[str, Any], str, str]:
        """Create a todo-app stack through node-a and hold its up at the sandbox gate after ``allow``
        operations: (the run, the node running it, the other node)."""
        self.gate.close(allow=allow)
        with self["node-a"].client() as a:
            run = a.post("/v1/stacks", json={"name": name, "case": "todo-app"}).json()
            self.gate.wait_held(stack=f"admin.{name}")
            running = str(a.get(f"/v1/runs/{run['id']}").json()["node"])
        return dict(run), running, next(n for n in self.nodes if n != running)

    def start(self) -> Fleet:
        try:
            for node in self.nodes.values():
                node.start()
        except BaseException:  # no node outlives a fleet that did not start
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()


@pytest.fixture
def fleet(tmp_path: Path, pulumi_toolchain: str, database: str) -> Iterator[Fleet]:
    nodes = Fleet(tmp_path, pulumi_toolchain, database).start()
    yield nodes
    nodes.stop()


def test_either_node_creates_changes_and_deletes_a_stack_the_other_accepted(fleet: Fleet) -> None:
    with fleet["node-a"].client() as a, fleet["node-b"].client() as b:
        created = a.post("/v1/stacks", json={"name": "shared", "case": "todo-app"}).json()
        assert wait_run(b, created["id"])["status"] == "succeeded"
        change = b.patch("/v1/stacks/shared", json={"arguments": {"cache_ttl_seconds": 120}})
        assert change.status_code == 202
        # A write committed on one node is in the other's next read.
        assert a.get("/v1/stacks/shared").json()["arguments"]["cache_ttl_seconds"] == 120
        assert a.get(f"/v1/runs/{change.json()['id']}").json()["kind"] == "update"
        updated = wait_run(a, change.json()["id"])
        assert updated["status"] == "succeeded", describe(updated)
        assert b.get("/v1/stacks/shared").json()["applied_arguments"]["cache_ttl_seconds"] == 120
        assert len(fleet.records()) == b.get("/v1/stacks/shared").json()["resource_count"] > 0
        assert [k.rsplit("/", 1)[1] for k in fleet.state_keys("admin.shared")] == [  # compressed: about 1/14 the size
            "admin.shared.json.gz", "admin.shared.json.gz.bak"]
        deleted = b.delete("/v1/stacks/shared", params={"delete_data": "true"}).json()
        assert wait_run(a, deleted["id"])["status"] == "succeeded"
        assert a.get("/v1/stacks/shared").status_code == 404 and b.get("/v1/stacks/shared").status_code == 404
        assert fleet.records() == []


def test_runs_of_one_stack_keep_their_order_across_nodes_and_each_runs_once(fleet: Fleet) -> None:
    with fleet["node-a"].client() as a, fleet["node-b"].client() as b:
        created = a.post("/v1/stacks", json={"name": "ordered", "case": "todo-app"}).json()
        accepted = [created["id"]]
        for i, api in enumerate([b, a, b, a, b, a]):  # while the up runs, changes arrive on both nodes
            response = api.patch("/v1/stacks/ordered", json={"arguments": {"cache_ttl_seconds": 60 + i}})
            assert response.status_code == 202, response.text
            accepted.append(response.json()["id"])
        runs = [wait_run(a, run_id, timeout=600) for run_id in accepted]
        assert all(r["status"] == "succeeded" for r in runs), [describe(r) for r in runs]
        # One at a time, in the order they were accepted, whichever node ran them.
        for before, after in itertools.pairwise(runs):
            assert before["finished_at"] <= after["started_at"], (before, after)
        assert {r["node"] for r in runs} <= {"node-a", "node-b"}
        listed = b.get("/v1/stacks/ordered/runs", params={"limit": 100}).json()["items"]
        assert sorted(r["id"] for r in listed) == sorted(accepted), "no run lost, none added"
        stack = b.get("/v1/stacks/ordered").json()
        assert stack["applied_arguments"]["cache_ttl_seconds"] == 65 and stack["status"] == "ready"


def test_a_node_killed_during_an_up_is_carried_through_by_the_other(fleet: Fleet) -> None:
    # Held at its first creates: nothing is in flight when the machine dies. (A create the cloud
    # finished but the engine had not yet saved is a pending create; recovery drops it from the
    # state, as Pulumi does, and that resource is left behind: see README, Runs and crashes.)
    run, running, other = fleet.hold_an_up("survivor", allow=0)
    doomed, survivor = fleet[running], fleet[other]
    doomed.crash()  # the node and every worker and engine it started, at once
    fleet.gate.open()
    with survivor.client() as api:
        carried = wait_run(api, run["id"], timeout=600)
        assert carried["status"] == "succeeded" and carried["recovered"], describe(carried)
        assert carried["node"] == survivor.env["SERVERLESS_CASES_NODE_ID"]
        stack = api.get("/v1/stacks/survivor").json()
        assert stack["status"] == "ready" and stack["resource_count"] == len(fleet.records())
        runs = api.get("/v1/stacks/survivor/runs").json()["items"]
        assert [r["id"] for r in runs] == [run["id"]], "the up ran on, once: no second run was made"
        later = api.patch("/v1/stacks/survivor", json={"arguments": {"cache_ttl_seconds": 30}}).json()
        assert wait_run(api, later["id"])["status"] == "succeeded"
    doomed.start()  # the dead node comes back and takes its place in the fleet
    with doomed.client() as api:
        assert api.get("/v1/stacks/survivor").json()["applied_arguments"]["cache_ttl_seconds"] == 30


def test_a_cancel_sent_to_either_node_stops_the_run_where_it_runs(fleet: Fleet) -> None:
    run, runner_node, other = fleet.hold_an_up("halted", allow=3)
    with fleet[other].client() as api:
        assert api.post(f"/v1/runs/{run['id']}/cancel").status_code == 200
        cancelled = wait_run(api, run["id"])
        assert cancelled["status"] == "cancelled" and cancelled["node"] == runner_node, describe(cancelled)
        assert cancelled["error"]["error"] == "Cancelled"
        # Stopped cleanly where it ran: the stack can be deleted, and nothing is left in the cloud.
        fleet.gate.open()
        deleted = api.delete("/v1/stacks/halted", params={"delete_data": "true"}).json()
        assert wait_run(api, deleted["id"])["status"] == "succeeded"
    assert fleet.records() == []


def test_a_change_waiting_for_its_stack_does_not_hold_up_another_stack_on_the_same_node(
        fleet: Fleet, database: str) -> None:
    """Acceptances are ordered by each stack's row lock, which every node shares: a change that waits
    for its stack (locked here by another transaction, as a slow commit on another node would hold it)
    does not delay a create of another stack on the same node."""
    with fleet["node-a"].client() as a, fleet["node-a"].client() as a2, ThreadPoolExecutor(1) as pool:
        first = a.post("/v1/stacks", json={"name": "busy", "case": "todo-app"}).json()
        with psycopg.connect(database) as holder:
            holder.execute("SELECT id FROM stacks WHERE name = 'busy' FOR UPDATE")
            change = pool.submit(a2.patch, "/v1/stacks/busy", json={"arguments": {"cache_ttl_seconds": 90}})
            _wait_for_a_lock_wait(holder)
            other = a.post("/v1/stacks", json={"name": "free", "case": "todo-app"}, timeout=20)
            assert other.status_code == 202, other.text
            assert not change.done(), "the change still waits for its stack"
            holder.rollback()
        changed = change.result(timeout=30)
        assert changed.status_code == 202, changed.text
        runs = [wait_run(a, run_id) for run_id in (first["id"], changed.json()["id"], other.json()["id"])]
        assert all(r["status"] == "succeeded" for r in runs), [describe(r) for r in runs]


def _wait_for_a_lock_wait(connection: psycopg.Connection[Any], timeout: float = 30) -> None:
    """Until another session of the database waits for a row lock."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(connection.info.dsn, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            row = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND wait_event_type = 'Lock'").fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.1)
    raise AssertionError("no session waited for a row lock")


def test_a_renewal_during_the_take_over_of_its_node_waits_for_it_then_finds_the_lease_gone(database: str) -> None:
    """Taking a dead node's runs over and that node's renewal exclude each other: a renewal that
    arrives while another node puts the dead node's workflows back in the queue waits for it, and
    then finds the lease gone (the node stops its engines and only then joins again, so nothing it
    runs after joining was put back in the queue). A lease the others take for dead cannot be
    renewed either, taken over or not."""
    db = Database(f"postgresql+psycopg://{database.removeprefix('postgresql://')}")
    try:
        # node-a's clock runs behind: it thinks its lease is still within the grace period
        a, b = Leases(db, "node-a", "api,runs", seconds=1, grace=60), Leases(db, "node-b", "api,runs", seconds=1, grace=1)
        a.join()
        time.sleep(2.5)  # node-a's lease ran out more than the grace period ago
        b.join()
        assert b.dead() == ["node-a"]
        renewed: list[bool] = []
        renewal = threading.Thread(target=lambda: renewed.append(a.renew()))

        def recover(node_id: str) -> int:
            assert node_id == "node-a"
            renewal.start()
            with psycopg.connect(database) as watcher:
                _wait_for_a_lock_wait(watcher)
            assert not renewed, "the renewal waits while the node's runs are being taken over"
            return 2

        assert b.take_over("node-a", recover) == 2
        renewal.join(timeout=30)
        assert renewed == [False], "the node's lease is gone once its runs were taken over"
        assert b.take_over("node-a", recover) is None, "a node's runs are taken over once"
        a.join()
        assert a.renew() and b.dead() == []
        a.grace = 1
        time.sleep(2.5)
        assert not a.renew(), "a lease the others take for dead is not renewed"
    finally:
        db.dispose()


def test_a_node_paused_inside_a_transaction_does_not_keep_its_runs_from_being_taken_over(database: str) -> None:
    """A node paused while it holds its lease's row (a frozen process in the middle of a renewal)
    would keep every other node from taking its runs over for as long as it stays paused: the
    server ends its session once it has idled in the transaction for the node's lease time."""
    url = f"postgresql+psycopg://{database.removeprefix('postgresql://')}"
    paused_db, live_db = Database(url, idle_transaction_seconds=1), Database(url, idle_transaction_seconds=60)
    try:
        paused = Leases(paused_db, "node-a", "api,runs", seconds=1, grace=1)
        live = Leases(live_db, "node-b", "api,runs", seconds=60, grace=1)
        paused.join()
        live.join()
        with paused_db.engine.connect() as connection:
            connection.begin()
            connection.execute(update(Node).where(Node.id == "node-a").values(roles="api,runs"))  # holds the row
            time.sleep(3)  # paused: its lease and the grace period run out
            assert live.dead() == ["node-a"]
            assert live.take_over("node-a", lambda node_id: 0) == 0, "the paused node's runs are taken over"
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="idle-in-transaction timeout"):
                connection.execute(select(1))  # its session was ended
    finally:
        paused_db.dispose()
        live_db.dispose()


def _start_node(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m service`` that is expected to refuse to start."""
    return subprocess.run([sys.executable, "-m", "service"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize(("settings", "named"), [
    ({"SERVERLESS_CASES_DATABASE_URL": ""}, "SERVERLESS_CASES_DATABASE_URL"),
    ({"SERVERLESS_CASES_BACKEND_URL": "file:///tmp/state"}, "SERVERLESS_CASES_BACKEND_URL"),
    ({"SERVERLESS_CASES_BACKEND_URL": ""}, "SERVERLESS_CASES_BACKEND_URL"),
    ({"SERVERLESS_CASES_PASSPHRASE": ""}, "SERVERLESS_CASES_PASSPHRASE"),
])
def test_a_fleet_node_whose_settings_cannot_work_stops_at_start_naming_the_setting(
        tmp_path: Path, settings: dict[str, str], named: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVERLESS_CASES_")}
    env.update({"SERVERLESS_CASES_FLEET": "true", "SERVERLESS_CASES_DATA_DIR": str(tmp_path),
                "SERVERLESS_CASES_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none",
                "SERVERLESS_CASES_BACKEND_URL": "postgres://postgres@127.0.0.1:1/none",
                "SERVERLESS_CASES_PASSPHRASE": PASSPHRASE})
    for key, value in settings.items():
        if value:
            env[key] = value
        else:
            env.pop(key)
    done = _start_node(env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert named in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("quotas", ["{not json", "[100]", '{"aws:cloudfront/keyGroup:KeyGroup": "many"}'])
def test_a_node_whose_sandbox_quotas_cannot_work_stops_at_start_naming_the_setting(tmp_path: Path,
                                                                                   quotas: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVERLESS_CASES_")}
    env.update({"SERVERLESS_CASES_DATA_DIR": str(tmp_path), "SERVERLESS_CASES_SANDBOX_QUOTAS": quotas})
    done = _start_node(env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "SERVERLESS_CASES_SANDBOX_QUOTAS: not a JSON object of type token to a count" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr[-2000:]


def test_a_second_node_on_sqlite_stops_at_start(tmp_path: Path, pulumi_toolchain: str) -> None:
    first = Service(tmp_path / "first", pulumi_toolchain, node_id="first").start()
    try:
        env = {**first.env, "SERVERLESS_CASES_NODE_ID": "second", "SERVERLESS_CASES_DATA_DIR": str(tmp_path / "second"),
               "SERVERLESS_CASES_DATABASE_URL": f"sqlite:///{tmp_path / 'first' / 'service.db'}",
               "SERVERLESS_CASES_PORT": "1"}
        done = _start_node(env)
        assert done.returncode == 2, done.stderr[-2000:]
        assert "SERVERLESS_CASES_DATABASE_URL" in done.stderr and "node 'first' is live" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        first.stop()
    # Once the first node has left, a node (the same, or a replacement) starts on that database.
    replacement = Service(tmp_path / "first", pulumi_toolchain, node_id="replacement").start()
    replacement.stop()


def test_a_frozen_node_whose_runs_were_taken_over_stops_their_engines_when_it_wakes(fleet: Fleet) -> None:
    """A node that could not renew its lease (frozen here, as a long pause or partition would
    leave it) finds its runs carried on by another node, and stops its own engines for them:
    two engines never write one stack."""
    run, running, other = fleet.hold_an_up("partitioned", allow=4)
    node = fleet[running]
    engines = [pid for pid in node.workers() if _leads_an_engine(pid)]
    assert engines, "the run's worker leads an engine"
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGSTOP)  # frozen: no lease renewal, as in a partition
    try:
        deadline = time.monotonic() + 60
        with fleet[other].client() as api:
            carried = wait_run(api, run["id"], timeout=600, until={"running"})
            while carried.get("node") == running and time.monotonic() < deadline:
                time.sleep(0.5)
                carried = api.get(f"/v1/runs/{run['id']}").json()
    finally:
        os.kill(node.process.pid, signal.SIGCONT)
    fleet.gate.open()
    with fleet["node-a"].client() as a:
        done = wait_run(a, run["id"], timeout=600)
    assert done["status"] == "succeeded" and done["recovered"], describe(done)
    assert all(not alive(pid) for pid in engines), "the frozen node's engines were stopped once it woke"


def _leads_an_engine(leader: int) -> bool:
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            pgrp = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2])
            if pgrp == leader and (entry / "cmdline").read_bytes().split(b"\0")[0].endswith(b"pulumi"):
                return True
    return False


def _engines_stopped_when_cut_off(fleet: Fleet, links: dict[str, Link], how: str, stack: str) -> tuple[dict[str, Any], str, str]:
    """Hold an up, break the running node's link to the service database (its CLIs still reach the
    state backend), and require that node to stop the run's engines once its lease has run out,
    before the other node carries the run on."""
    run, running, other = fleet.hold_an_up(stack, allow=4)
    engines = [pid for pid in fleet[running].workers() if _leads_an_engine(pid)]
    assert engines, "the run's worker leads an engine"
    links[running].break_(how)
    deadline = time.monotonic() + 60
    with fleet[other].client() as api:
        while any(alive(pid) for pid in engines) and time.monotonic() < deadline:
            carrier = api.get(f"/v1/runs/{run['id']}").json()["node"]
            assert carrier == running or not any(alive(pid) for pid in engines), \
                "the other node carried the run on while the cut-off node's engine still ran"
            time.sleep(0.1)
    assert not any(alive(pid) for pid in engines), "the cut-off node stopped its engines"
    return run, running, other


@contextlib.contextmanager
def _linked_fleet(tmp_path: Path, toolchain: str, database: str, **settings: Any) -> Iterator[tuple[Fleet, dict[str, Link]]]:
    """Two nodes, each reaching the service database through a link the test can break."""
    links = {name: Link(database) for name in ("node-a", "node-b")}
    fleet = Fleet(tmp_path, toolchain, database, links=links, **settings).start()
    try:
        yield fleet, links
    finally:
        fleet.stop()
        for link in links.values():
            link.close()


def _carried_through(fleet: Fleet, run: dict[str, Any], stack_name: str, *, by: str, asking: str) -> dict[str, Any]:
    """The held run, once the gate is open: recovered and carried through by node ``by``, with every
    resource of the stack in its state and none left over in the cloud."""
    fleet.gate.open()
    with fleet[asking].client() as api:
        done = wait_run(api, run["id"], timeout=300)
        assert done["status"] == "succeeded" and done["recovered"] and done["node"] == by, describe(done)
        stack = api.get(f"/v1/stacks/{stack_name}").json()
    assert stack["status"] == "ready" and stack["resource_count"] == len(fleet.records()) > 0, stack
    return done


@pytest.mark.parametrize("how", ["reset", "silent"])
def test_a_node_cut_off_from_the_database_stops_its_engines_and_the_other_carries_its_run(
        tmp_path: Path, pulumi_toolchain: str, database: str, how: str) -> None:
    """A node that cannot renew its lease (its link to the service database reset, or gone silent
    so that renewals hang) stops its runs' engines itself once the lease has run out, before
    another node carries the runs on: two engines never write one stack. Mended, it rejoins and
    runs later changes (a change it takes up before it notices it was taken for dead included)."""
    with _linked_fleet(tmp_path, pulumi_toolchain, database) as (fleet, links):
        run, running, other = _engines_stopped_when_cut_off(fleet, links, how, "cut-off")
        done = _carried_through(fleet, run, "cut-off", by=other, asking=other)
        links[running].mend()
        deadline = time.monotonic() + 120
        with fleet[running].client() as api:  # back on the database, it serves what the other node did
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    seen = api.get(f"/v1/runs/{run['id']}")
                    if seen.status_code == 200 and seen.json()["status"] == "succeeded":
                        break
                time.sleep(0.1)
            assert api.get(f"/v1/runs/{run['id']}").json() == done
            later = api.patch("/v1/stacks/cut-off", json={"arguments": {"cache_ttl_seconds": 45}}).json()
            assert wait_run(api, later["id"], timeout=300)["status"] == "succeeded"


def test_a_node_cut_off_for_less_than_the_grace_carries_its_own_run_on_once_mended(
        tmp_path: Path, pulumi_toolchain: str, database: str) -> None:
    """A node whose lease ran out stops its engines; mended before the others take it for dead, it
    carries its run on itself, recovering the stack first: no run is left pending that nobody runs."""
    with _linked_fleet(tmp_path, pulumi_toolchain, database, node_grace_seconds=600) as (fleet, links):
        run, running, other = _engines_stopped_when_cut_off(fleet, links, "reset", "brief")
        links[running].mend()
        _carried_through(fleet, run, "brief", by=running, asking=other)
