"""Workers forked from one process that has done every case's imports (a fork server).

A worker started as a fresh interpreter spends 1.7-2.4 s of CPU on its imports and holds
110-130 MB of its own; forked from a process that has done them, it starts at once and
shares those pages with every other worker. The fork server is ``python -m service.worker
... forkserver FD``: it loads everything, then forks a worker for each request that arrives
on its end of a socket pair. Both halves of that socket's protocol live here:

- service -> fork server: ``fork``, carrying the worker's stdin, stdout and stderr (SCM_RIGHTS);
- fork server -> service: ``ready`` once loaded, ``pid N`` for each fork, carrying a pidfd of
  the worker, and ``exit N STATUS`` when a worker it forked has ended (it is their parent: only
  it can know how they ended).

The service signals a worker through its pidfd, not its pid: a pid is free for reuse the moment
the fork server reaps the worker, before the service hears of it, and a signal sent by pid in
that moment could reach an unrelated process. A pidfd names the one process it was opened for.

A worker leads a session of its own, as a spawned one does, so stopping a run's process group
never touches the fork server. When the service closes its end (it stopped, or died), the fork
server asks each worker still running to stop as a cancel would (SIGTERM), waits for them, and
exits.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

LOG = logging.getLogger("serverless_cases.workers")

READY, FORK = b"ready", b"fork"


# -- the fork server's own loop (in the preloaded process) ---------------------------------------
def serve(channel: socket.socket, worker_main: Callable[[], int]) -> int:
    """Fork a worker running ``worker_main`` for each request; report each one's end."""
    gc.collect()
    gc.freeze()  # the loaded objects stay out of the collector's reach: their pages stay shared
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    if not _send(channel, READY):
        return 0  # the service stopped while this was loading
    children: set[int] = set()
    closing = False
    while True:
        closing = _report_ended(channel, children) or closing
        if closing and not children:
            return 0
        watched: list[int] = [wake_read] if closing else [wake_read, channel.fileno()]
        ready, _, _ = select.select(watched, [], [])
        if wake_read in ready:
            os.read(wake_read, 512)
        if closing or channel.fileno() not in ready:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(channel, 64, 3)
        except OSError:
            message, fds = b"", []
        if message != FORK or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            closing = True
            for pid in children:  # the service is gone: its runs stop as a cancel would stop them
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            continue
        sys.stdout.flush()  # nothing buffered here is written twice, or by a worker
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _become_worker(channel, (wake_read, wake_write), fds, worker_main)
        for fd in fds:
            os.close(fd)
        children.add(pid)
        closing = not _send(channel, b"pid %d" % pid, _pidfd(pid)) or closing


def _report_ended(channel: socket.socket, children: set[int]) -> bool:
    """Reap every ended worker and tell the service how it ended; whether the service is gone."""
    gone = False
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        children.discard(pid)
        gone = not _send(channel, b"exit %d %d" % (pid, os.waitstatus_to_exitcode(status))) or gone
    return gone


def _pidfd(pid: int) -> int | None:
    """A pidfd of a child not reaped yet (so ``pid`` is still that child's), or None without pidfds."""
    try:
        return os.pidfd_open(pid)
    except OSError:  # Linux < 5.3
        return None


def _send(channel: socket.socket, message: bytes, fd: int | None = None) -> bool:
    try:
        if fd is None:
            channel.send(message)
        else:
            socket.send_fds(channel, [message], [fd])
        return True
    except OSError:
        return False
    finally:
        if fd is not None:
            os.close(fd)


def _become_worker(channel: socket.socket, wake: tuple[int, int], fds: list[int],
                   worker_main: Callable[[], int]) -> None:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in wake:
            os.close(fd)
        channel.close()
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        code = worker_main()
    finally:
        os._exit(code)


# -- the service's side ------------------------------------------------------------------------
class ForkedWorker:
    """A worker forked by the fork server, seen as :class:`subprocess.Popen` shows a child: its
    pid, pipes, ``poll``, ``wait`` and ``send_signal``. Its end is known from the fork server;
    if the fork server itself is gone, a worker no longer alive counts as killed."""

    def __init__(self, server: ForkServer, pid: int, stdin: IO[str], stdout: IO[str], stderr: IO[str],
                 pidfd: int | None = None) -> None:
        self.server, self.pid = server, pid
        self._pidfd = pidfd  # closed once the worker's end is known, under _signalling
        self._signalling = threading.Lock()
        self.stdin: IO[str] | None = stdin
        self.stdout: IO[str] | None = stdout
        self.stderr: IO[str] | None = stderr
        self.returncode: int | None = None
        self._ended = threading.Event()

    def __enter__(self) -> ForkedWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        """Close this side's pipes (as leaving a ``Popen`` block does; the worker is not waited for)."""
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def ended(self, returncode: int) -> None:
        with self._signalling:
            self.returncode = returncode
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        self._ended.set()

    def poll(self) -> int | None:
        if self.returncode is None and self.server.lost.is_set() and not self._alive():
            self.ended(-signal.SIGKILL)
        return self.returncode

    def _alive(self) -> bool:
        with self._signalling:
            if self._pidfd is not None:  # readable once the process has exited
                return not select.select([self._pidfd], [], [], 0)[0]
        return _alive(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
            self._ended.wait(0.2)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with self._signalling, contextlib.suppress(ProcessLookupError):
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, signum)
                elif self.returncode is None:
                    os.kill(self.pid, signum)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class ForkServer:
    """Starts the fork server and asks it for workers. ``fork`` raises :class:`OSError` when the
    fork server is not (or no longer) there; the caller then starts a worker of its own."""

    def __init__(self, argv: list[str], **popen: Any) -> None:
        self._channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen([*argv, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            start_new_session=True, **popen)
        finally:
            theirs.close()
        self.ready, self.lost = threading.Event(), threading.Event()
        self._forking = threading.Lock()  # one request at a time: replies come in request order
        self._forked: list[tuple[int, int | None]] = []  # (pid, pidfd) of forks not yet taken
        self._arrived = threading.Condition()
        self._workers: dict[int, ForkedWorker] = {}
        self._ends: dict[int, int] = {}  # ends reported before their worker was registered
        self._closed = False
        threading.Thread(target=self._listen, name="fork-server", daemon=True).start()

    def wait_ready(self, timeout: float) -> bool:
        """Wait while the fork server loads; whether it is ready (not lost, not still loading)."""
        with self._arrived:
            self._arrived.wait_for(lambda: self.ready.is_set() or self.lost.is_set(), timeout=timeout)
        return self.ready.is_set() and not self.lost.is_set()

    def fork(self) -> ForkedWorker:
        if not self.ready.is_set() or self.lost.is_set():
            raise OSError("the fork server is not ready")
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        ours, theirs = [stdin_write, stdout_read, stderr_read], [stdin_read, stdout_write, stderr_write]
        try:
            with self._forking:
                socket.send_fds(self._channel, [FORK], theirs)
                pid, pidfd = self._next_pid()
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        worker = ForkedWorker(self, pid, os.fdopen(ours[0], "w"), os.fdopen(ours[1]), os.fdopen(ours[2]), pidfd)
        with self._arrived:
            self._workers[pid] = worker
            if pid in self._ends:
                worker.ended(self._ends.pop(pid))
        return worker

    def _next_pid(self) -> tuple[int, int | None]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: self._forked or self.lost.is_set(), timeout=30):
                self.lost.set()  # its replies can no longer be matched to requests: it is replaced
                raise OSError("the fork server did not answer")
            if not self._forked:
                raise OSError("the fork server is gone")
            return self._forked.pop(0)

    def _listen(self) -> None:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self._channel, 64, 1)
            except OSError:
                message, fds = b"", []
            if not message:
                break
            kind, *fields = message.split()
            if kind != b"pid":
                for fd in fds:
                    os.close(fd)
            with self._arrived:
                if kind == READY:
                    LOG.info("the worker fork server (pid %d) is ready", self.process.pid)
                    self.ready.set()
                elif kind == b"pid":
                    self._forked.append((int(fields[0]), fds[0] if fds else None))
                elif kind == b"exit":
                    pid, code = int(fields[0]), int(fields[1])
                    worker = self._workers.pop(pid, None)
                    if worker is None:
                        self._ends[pid] = code
                    else:
                        worker.ended(code)
                self._arrived.notify_all()
        with self._arrived:
            self.lost.set()
            self._arrived.notify_all()
        if self.process.poll() is None and not self._closed:
            LOG.warning("the worker fork server stopped talking; runs start fresh workers until it is replaced")

    def close(self, timeout: float = 10.0) -> None:
        """Close the service's end: the fork server stops what it still runs, then exits."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._channel.shutdown(socket.SHUT_RDWR)
        self._channel.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
