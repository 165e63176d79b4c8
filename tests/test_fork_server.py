"""Workers forked from the fork server behave as spawned workers do for the runner: their own
pipes and session, their exit code or killing signal reported, stopped as a cancel would stop
them when the service goes, and never waited for in vain when the fork server itself is gone.
The fork server here runs a small worker of its own (the real one needs a job and an engine)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from programs.targets import REPO_ROOT
from service.forkserver import ForkedWorker, ForkServer
from service.workers import Workers
from tests.service_harness import Service, wait_run

# Reads one command on stdin: `exit N` (prints who it is, exits with N) or `hold` (prints
# `holding`, then waits; SIGTERM makes it print `stopping` and exit 0, as a cancel would).
WORKER = textwrap.dedent("""
    import os, signal, socket, sys, time
    from service import forkserver

    def main():
        command = sys.stdin.readline().split()
        if command[0] == "exit":
            print(os.getpid(), os.getppid(), os.getpgid(0), os.getsid(0), flush=True)
            return int(command[1])
        def stop(signum, frame):
            print("stopping", flush=True)
            os._exit(0)
        signal.signal(signal.SIGTERM, stop)
        print("holding", flush=True)
        while True:
            time.sleep(1)

    sys.exit(forkserver.serve(socket.socket(fileno=int(sys.argv[-1])), main))
""")


@pytest.fixture
def server() -> Iterator[ForkServer]:
    forks = ForkServer([sys.executable, "-c", WORKER], cwd=REPO_ROOT)
    assert forks.ready.wait(30), "the fork server did not report ready"
    yield forks
    forks.close()


def _ask(worker: ForkedWorker, command: str) -> str:
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(command + "\n")
    worker.stdin.close()
    return worker.stdout.readline().strip()


def test_a_forked_worker_has_its_own_pipes_and_session_and_its_exit_code_is_reported(server: ForkServer) -> None:
    with server.fork() as worker:
        pid, parent, group, session = map(int, _ask(worker, "exit 3").split())
        assert pid == worker.pid and parent == server.process.pid
        assert group == session == pid, "a worker leads its own session: stopping its group never touches the fork server"
        assert worker.wait(timeout=10) == 3 and worker.poll() == 3


def test_a_forked_worker_killed_by_a_signal_is_reported_as_killed_by_it(server: ForkServer) -> None:
    with server.fork() as worker:
        assert _ask(worker, "hold") == "holding"
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL


def test_a_signal_for_a_forked_worker_reaches_that_worker_whatever_its_pid_now_names(server: ForkServer) -> None:
    """A pid is free for reuse once the fork server has reaped the worker, before the service
    hears of its end; a signal sent by pid then could stop an unrelated process. Here the worker's
    pid is made to name another process, as a reused pid would: the signal must still reach the
    worker (it is sent through the pidfd the fork server handed over), and the other process must
    live on."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with server.fork() as worker:
            assert _ask(worker, "hold") == "holding"
            own_pid, worker.pid = worker.pid, bystander.pid
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=10) == 0  # the worker's SIGTERM handler: it stopped as a cancel would
            assert worker.stdout is not None and worker.stdout.readline().strip() == "stopping"
            assert bystander.poll() is None, "the signal reached the process its pid now names"
            worker.send_signal(signal.SIGTERM)  # after its end: nothing is signalled at all
            assert bystander.poll() is None
            assert own_pid != bystander.pid
    finally:
        bystander.kill()
        bystander.wait()


def test_workers_forked_at_once_from_many_threads_are_each_their_own(server: ForkServer) -> None:
    def one(code: int) -> tuple[int, int]:
        with server.fork() as worker:
            pid = int(_ask(worker, f"exit {code}").split()[0])
            assert pid == worker.pid
            return worker.pid, worker.wait(timeout=20)

    with ThreadPoolExecutor(max_workers=8) as pool:
        ended = list(pool.map(one, range(16)))
    assert [code for _, code in ended] == list(range(16))
    assert len({pid for pid, _ in ended}) == 16


def test_when_the_service_closes_its_end_running_workers_are_stopped_as_a_cancel_would_then_the_fork_server_exits(
        server: ForkServer) -> None:
    with server.fork() as worker:
        assert _ask(worker, "hold") == "holding"
        server.close(timeout=10)
        assert server.process.returncode == 0, "the fork server ended on its own, after its workers"
        assert worker.stdout is not None and worker.stdout.readline().strip() == "stopping"
        assert not Path(f"/proc/{worker.pid}").exists()


def test_a_worker_whose_fork_server_died_is_not_waited_for_in_vain(server: ForkServer) -> None:
    with server.fork() as worker:
        assert _ask(worker, "hold") == "holding"
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        assert server.lost.wait(10), "a fork server that stopped talking is known to be lost"
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(timeout=0.5)  # still running: its end is not made up
        os.kill(worker.pid, signal.SIGKILL)  # (reaped by init, its new parent)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    with pytest.raises(OSError):
        server.fork()


def test_runs_start_a_fresh_worker_while_no_fork_server_is_there_and_a_lost_one_is_replaced(
        tmp_path: Path, pulumi_toolchain: str) -> None:
    workers = Workers(Path(pulumi_toolchain), niceness=0, forked=True)
    try:
        fresh = workers.take()  # no fork server started yet
        assert isinstance(fresh, subprocess.Popen) and fresh.args[-1] == "run"
        fresh.communicate(input="", timeout=60)  # given no job, it ends
        workers.warm()
        server = workers._server
        assert server is not None and server.ready.wait(60)
        forked = workers.take()
        assert isinstance(forked, ForkedWorker) and _parent(forked.pid) == server.process.pid
        with forked:
            assert forked.stdin is not None
            forked.stdin.close()  # given no job, it ends
            assert forked.wait(timeout=30) == 0
        os.kill(server.process.pid, signal.SIGKILL)
        assert server.lost.wait(10)
        fresh = workers.take()
        assert isinstance(fresh, subprocess.Popen), "a lost fork server gives way to fresh workers"
        fresh.communicate(input="", timeout=60)
        workers.warm()
        assert workers._server is not None and workers._server is not server and workers._server.ready.wait(60)
    finally:
        workers.close()


def _parent(pid: int) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"process {pid} not found")


def test_a_service_run_is_forked_from_the_nodes_fork_server_even_while_it_loads(tmp_path: Path,
                                                                               pulumi_toolchain: str) -> None:
    service = Service(tmp_path / "svc", pulumi_toolchain, sandbox_latency_ms=300).start()
    try:
        assert service.process is not None
        with service.client() as api:  # at once: the fork server is still loading
            run = api.post("/v1/stacks", json={"name": "forked", "case": "software-updates"}).json()
            worker = _until_found(lambda: [pid for pid in service.workers() if _leads_an_engine(pid)])
            fork_server = service.workers()[worker]
            assert service.workers()[fork_server] == service.process.pid, "forked by the service's fork server"
            assert wait_run(api, run["id"])["status"] == "succeeded"
        assert f"the worker fork server (pid {fork_server}) is ready" in service.log_path.read_text()
        assert worker not in service.workers(), "the run's worker ended with its run"
        assert fork_server in service.workers(), "the fork server stays for the next run"
    finally:
        service.stop()
    assert service.workers() == {}


def _leads_an_engine(worker: int) -> bool:
    """Whether a worker runs a Pulumi CLI's ``up`` (the fork server's ``pulumi version`` is not one)."""
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{worker}/task/{worker}/children").read_text().split():
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if argv[0].endswith(b"pulumi") and b"up" in argv:
                return True
    return False


def _until_found(find: Callable[[], list[int]], timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("not found in time")
