"""Run the real service (uvicorn, the runner, worker processes, the Pulumi engine and the
sandbox) as a separate process on loopback, with its own data folder, and talk to it."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from programs import targets
from programs.targets import REPO_ROOT
from sandbox.cloud import SandboxCloud
from sandbox.rules import Identity
from sandbox.synthesis import DEFAULT_REGION
from service import workers
from service.identities import sandbox_account
from tests.engine import cloud_records

ADMIN_TOKEN = "sc_admin-token-for-tests-0123456789"
FINISHED = {"succeeded", "failed", "cancelled", "interrupted"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gate:
    """The sandbox's operation gate (``sandbox.provider.OperationGate``) of one service: close it
    and a run stays in progress, deterministically, until the test opens it or cancels the run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def close(self, allow: int = 0) -> None:
        """Hold every sandbox operation after the first ``allow`` of each run."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "closed").write_text(str(allow))

    def open(self) -> None:
        (self.folder / "closed").unlink(missing_ok=True)

    def held(self) -> list[str]:
        """URNs of the operations held so far."""
        folder = self.folder / "held"
        return [p.read_text() for p in folder.iterdir()] if folder.exists() else []

    def wait_held(self, count: int = 1, stack: str = "", timeout: float = 240) -> list[str]:
        """Wait until ``count`` operations (of the backend stack ``stack``, if given) are held."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = [urn for urn in self.held() if f":{stack}::" in urn or not stack]
            if len(held) >= count:
                return held
            time.sleep(0.1)
        raise AssertionError(f"no run reached the sandbox gate ({count} operation(s) of {stack or 'any stack'}) "
                             f"within {timeout:.0f} s; held so far: {self.held()}")


class PortTakenError(Exception):
    """The service's port was taken between its choice and the service's start."""


class Service:
    def __init__(self, data_dir: Path, toolchain: str, **settings: Any) -> None:
        self.data_dir = data_dir
        self.gate = Gate(data_dir / "gate")
        self.log_path = data_dir / "service.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SERVERLESS_CASES_", "PULUMI_"))}
        self.env.update({
            "SERVERLESS_CASES_DATA_DIR": str(data_dir),
            "SERVERLESS_CASES_BOOTSTRAP_TOKEN": ADMIN_TOKEN, "SERVERLESS_CASES_TOOLCHAIN_BIN": toolchain,
            "PULUMI_HOME": str(data_dir / "pulumi-home"), "SERVERLESS_CASES_SANDBOX_GATE_DIR": str(self.gate.folder),
        })
        # Runs compete evenly with the other tests' processes (pytest workers run side by side):
        # niced, as in production, they would wait for a neighbour's engine runs to finish.
        settings.setdefault("run_niceness", 0)
        self.env.update({f"SERVERLESS_CASES_{k.upper()}": str(v) for k, v in settings.items()})
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.use_port(free_port())
        self.sandbox_cloud = Path(settings.get("sandbox_cloud") or data_dir / "sandbox-cloud")
        self.set_up_account("admin")

    def set_up_account(self, tenant: str) -> None:
        """Take the tenant's sandbox account as set up by hand (``sandbox.cloud.set_up_by_hand``): its
        API Gateway CloudWatch role is set, as the cases with a REST API need beforehand."""
        SandboxCloud(self.sandbox_cloud, DEFAULT_REGION, Identity(account=sandbox_account(tenant))).set_up_by_hand()

    def start(self, timeout: float = 60) -> Service:
        """Start the service and wait until it answers. Its port was free when it was chosen; any
        process may take a free port before the service binds it (a client's connection gets one
        from the same range), so a service that finds its port taken starts again on another."""
        for _ in range(3):
            try:
                return self._start(timeout)
            except PortTakenError:
                self.use_port(free_port())
        return self._start(timeout)

    def use_port(self, port: int) -> None:
        self.port = port
        self.env["SERVERLESS_CASES_PORT"] = str(port)
        self.base_url = f"http://127.0.0.1:{port}"

    def _start(self, timeout: float) -> Service:
        data = self.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process's life
        logged_before = self._log.tell()
        self.process = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO_ROOT, env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                self._log.close()
                logged = self.log_path.read_bytes()[logged_before:].decode(errors="replace")
                if "address already in use" in logged:
                    raise PortTakenError(self.port)
                raise RuntimeError(f"the service exited:\n{logged[-4000:]}")
            time.sleep(0.2)
        raise TimeoutError("the service did not start")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()

    def crash(self) -> None:
        """SIGKILL the service and, at the same moment, every process it started (workers, engines,
        and the plugins the engines started in process groups of their own), as a machine crash would."""
        assert self.process is not None
        tree = workers.descendants({self.process.pid})
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)  # frozen first: none of them acts on another's death
        self.kill()
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def cli(self, pulumi_stack: str, *args: str) -> subprocess.CompletedProcess[str]:
        """The plain Pulumi CLI on this service's state backend, in the stack's workspace."""
        env = targets.engine_env("sandbox", {"PATH": "/usr/bin:/bin"}, self.env["SERVERLESS_CASES_TOOLCHAIN_BIN"])
        env.update({"PULUMI_BACKEND_URL": f"file://{self.data_dir / 'state'}",
                    "PULUMI_CONFIG_PASSPHRASE_FILE": str(self.data_dir / "passphrase"),
                    "PULUMI_HOME": str(self.data_dir / "pulumi-home")})
        return subprocess.run(["pulumi", "--non-interactive", *args], cwd=self.data_dir / "workspaces" / pulumi_stack,
                              env=env, capture_output=True, text=True, timeout=120)

    @property
    def stacks_state_dir(self) -> Path:
        """Where the service's file backend keeps the project's stacks' checkpoints."""
        return self.data_dir / "state" / ".pulumi" / "stacks" / "serverless-cases"

    def checkpoint_file(self, pulumi_stack: str) -> Path:
        """The stack's checkpoint in the service's file backend (compressed as ``STATE_COMPRESSION`` says)."""
        # A crash in the middle of a write leaves the blob library's temporary file (<name>.json.<n>.tmp),
        # which the backend never reads.
        found = [p for p in self.stacks_state_dir.glob(f"{pulumi_stack}.json*")
                 if not p.name.endswith((".bak", ".attrs", ".tmp"))]
        assert len(found) == 1, f"not one checkpoint of {pulumi_stack}: {sorted(p.name for p in found)}"
        return found[0]

    def checkpoint(self, pulumi_stack: str) -> dict[str, Any]:
        """The stack's latest deployment as the service's file backend holds it (plain or gzip)."""
        data = self.checkpoint_file(pulumi_stack).read_bytes()
        plain = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        return dict(json.loads(plain)["checkpoint"]["latest"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None and not self._log.closed:
            self._log.close()

    def workers(self) -> dict[int, int]:
        """This service's live worker processes (its fork server included; exited ones not yet
        reaped are not counted): pid -> parent pid."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if b"service.worker" not in (entry / "cmdline").read_bytes():
                    continue
                environ = (entry / "environ").read_bytes().split(b"\0")
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, parent = stat.rsplit(")", 1)[1].split()[:2]
            if f"SERVERLESS_CASES_DATA_DIR={self.data_dir}".encode() in environ and state != "Z":
                found[int(entry.name)] = int(parent)
        return found

    def strays(self) -> set[int]:
        """Worker processes of this service's data folder that the running service did not start
        (a killed service's that outlived it): not its fork server nor a worker forked from it."""
        assert self.process is not None
        return set(self.workers()) - workers.descendants({self.process.pid})

    def client(self, token: str = ADMIN_TOKEN) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def cloud_records(self, tenant: str = "admin") -> list[Any]:
        """What the sandbox holds for the tenant: the resources of its own sandbox account."""
        return cloud_records(self.sandbox_cloud, sandbox_account(tenant))

    def tenant_token(self, name: str, *, account_set_up: bool = True) -> str:
        """A new tenant's token; its sandbox account is taken as set up (:meth:`set_up_account`) unless
        ``account_set_up`` is false (a new AWS account)."""
        with self.client() as admin:
            response = admin.post("/v1/tenants", json={"name": name})
            assert response.status_code == 201, response.text
        if account_set_up:
            self.set_up_account(name)
        return str(response.json()["token"])


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def until(condition: Callable[[], bool], timeout: float = 15) -> bool:
    """Whether ``condition`` holds within ``timeout`` seconds (checked every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def wait_run(client: httpx.Client, run_id: str, timeout: float = 300, until: set[str] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    until = until or FINISHED
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = client.get(f"/v1/runs/{run_id}").json()
        if run["status"] in until:
            return dict(run)
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} ({run.get('kind')}) did not reach {sorted(until)} within {timeout:.0f} s: "
                       f"last seen {run.get('status')!r}, error {run.get('error')}")


def describe(run: dict[str, Any]) -> str:
    """One line for an assertion message: what a run ended as, and why."""
    error = run.get("error") or {}
    return f"run {run.get('id')} ({run.get('kind')}) {run.get('status')}: {error.get('error')} {error.get('detail') or ''}"


def sse_events(client: httpx.Client, run_id: str, last_event_id: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with client.stream("GET", f"/v1/runs/{run_id}/events", headers=headers, timeout=120) as response:
        assert response.status_code == 200
        event, data = "message", ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = line.split(":", 1)[1].strip()
            elif line == "" and data:
                yield event, json.loads(data)
                if event == "end":
                    return
                event, data = "message", ""
