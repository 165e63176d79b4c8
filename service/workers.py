"""Worker processes on this node: giving each run one (forked from the fork server, or started
fresh), and finding and stopping the process group a worker leads (its Pulumi CLI and plugins
included)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Protocol

from programs.targets import REPO_ROOT
from service import forkserver
from service.preloaders import Preloaders
from toolchain import preload

LOG = logging.getLogger("serverless_cases.workers")


FORK_SERVER_LOAD_SECONDS = 60.0  # measured: 4.5 s of CPU, more on a busy machine at niceness 19


class Worker(Protocol):
    """A run's worker process, spawned or forked: what the runner uses of it."""

    pid: int
    returncode: int | None
    stdin: IO[str] | None
    stdout: IO[str] | None
    stderr: IO[str] | None

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, signum: int) -> None: ...


class Workers:
    """Gives each run a worker: forked from the fork server when ``forked`` (it has done every
    case's imports once, for all runs), else (or while the fork server is not ready) a fresh
    ``python -m service.worker`` process that imports what its case needs."""

    def __init__(self, toolchain_bin: Path, niceness: int, forked: bool, preload: bool = True) -> None:
        self.toolchain_bin, self.niceness, self.forked = toolchain_bin, niceness, forked
        self._server: forkserver.ForkServer | None = None
        self.preloaders = Preloaders(niceness, toolchain_bin) if preload else None
        self._lock = threading.Lock()
        self.closed = False

    def _argv(self, mode: str) -> list[str]:
        return [sys.executable, "-m", "service.worker", str(self.toolchain_bin), str(self.niceness), mode]

    def spawn(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self._argv("run"), cwd=REPO_ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def take(self) -> Worker:
        """A forked worker if the fork server is ready, else a fresh one (never waits)."""
        with self._lock:
            server = self._server
        if server is not None and server.ready.is_set():
            try:
                return server.fork()
            except OSError as exc:
                LOG.warning("a worker could not be forked (%s): this run starts a fresh one", exc)
        return self.spawn()

    def settle(self) -> None:
        """Let a run that arrives while the fork server loads wait for it (as a fresh worker would
        wait for its own imports, on CPU the fork server needs), within a bound."""
        with self._lock:
            server = self._server
        if server is not None:
            server.wait_ready(FORK_SERVER_LOAD_SECONDS)

    def plugin_env(self) -> dict[str, str]:
        """A run's environment for its Python plugins to start from the preloaders (none without)."""
        return self.preloaders.env() if self.preloaders is not None else {}

    def warm(self) -> None:
        """Start the fork server and the plugin preloaders, or replace those that are gone."""
        with self._lock:
            if not self.closed and self.preloaders is not None:
                self.preloaders.start()
            if self.closed or not self.forked or (self._server is not None and not self._server.lost.is_set()):
                return
            gone, self._server = self._server, forkserver.ForkServer(self._argv("forkserver"), cwd=REPO_ROOT)
        if gone is not None:
            gone.close()

    def close(self) -> None:
        """Stop the fork server (after the runs' workers: it reports how they ended)."""
        with self._lock:
            self.closed = True
            server, self._server = self._server, None
        if server is not None:
            server.close()
        if self.preloaders is not None:
            self.preloaders.close()


def dismiss(worker: Worker) -> None:
    """End a worker that was given no job (its run could not start): with its input closed it
    exits at once; one that does not is killed."""
    with contextlib.suppress(OSError):
        if worker.stdin is not None:
            worker.stdin.close()
    try:
        worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        kill_run(worker.pid)


def group(leader: int) -> dict[int, bytes]:
    """The live processes (pid -> command line) of the process group a worker led, if it is
    one: the worker may have exited, the Pulumi CLI it started stays in its group. Linux does
    not reuse a pid while a group still carries it, so a group whose members are a worker or
    a Pulumi CLI is the worker's."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, _, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            cmdline = (entry / "cmdline").read_bytes() if int(pgrp) == leader and state != "Z" else None
        except (OSError, ValueError):
            continue
        if cmdline is not None:
            members[int(entry.name)] = cmdline
    ours = any(b"service.worker" in c or c.split(b"\0")[0].endswith(b"pulumi") for c in members.values())
    return members if ours else {}


def stop_group(leader: int, grace_seconds: float) -> None:
    """Ask a worker's group to stop cleanly (SIGTERM to the worker, which passes SIGINT to its
    CLI; SIGINT to the CLI directly if the worker is gone), SIGKILL it after ``grace_seconds``,
    and return once none of it is left."""
    members = group(leader)
    for pid, cmdline in members.items():
        if pid == leader or (leader not in members and cmdline.split(b"\0")[0].endswith(b"pulumi")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if pid == leader else signal.SIGINT)
    if members and not gone(leader, grace_seconds):
        LOG.warning("a run's worker did not stop within the grace period; killing it")
        kill_run(leader)
        gone(leader, 30)


def gone(leader: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while group(leader):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def kill_run(leader: int) -> None:
    """SIGKILL a run's processes: the worker's process group (the worker, its CLI) and everything
    they started. Pulumi starts each plugin in a process group of its own, so killing the group
    alone left the plugins running, and they completed calls the dead engine had made (resources
    made in the cloud that no state records). Every process is stopped first, so none acts on
    another's death, and killed only then."""
    stopped: set[int] = set()
    for _ in range(3):  # a process started while the others were being stopped is found next round
        members = set(group(leader))  # empty unless the group is still a worker's
        family = members | descendants(members)
        plugins = forked_plugins(family)
        fresh = (family | plugins | descendants(plugins)) - stopped
        if not fresh:
            break
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= fresh
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def forked_plugins(pids: set[int]) -> set[int]:
    """The plugins that preloaders forked for the stand-ins among ``pids``. Such a plugin is the
    preloader's child, not its stand-in's, so it descends from no process of the run; it would
    leave once it noticed its stand-in's end, but until then it could still complete a call of
    the killed engine (a resource made that no state records). It holds the stand-in's own
    output (handed to it), and nothing else does but the engine reading it: that names it."""
    outputs = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/exe").endswith("/" + preload.STAND_IN_BINARY):
                output = os.readlink(f"/proc/{pid}/fd/1")
                if output.startswith(("pipe:", "socket:")):  # the engine's own pipe, never a shared file
                    outputs.add(output)
    found: set[int] = set()
    if not outputs:
        return found
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in pids:
            with contextlib.suppress(OSError):
                if os.readlink(entry / "fd" / "1") in outputs:
                    found.add(int(entry.name))
    return found


def descendants(roots: set[int]) -> set[int]:
    """Every process descending from one of ``roots`` (the roots themselves not included)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child not in roots:
                found.add(child)
                todo.append(child)
    return found


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "SERVERLESS_CASES_", "SANDBOX_"))}
