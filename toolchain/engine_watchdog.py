"""Exit a plugin whose engine has gone away.

The engine normally stops its plugins; an engine killed with SIGKILL cannot, and its
language host and providers would wait forever. Ours leave when their engine does:

- The engine starts its plugins itself (our launch scripts ``exec`` the interpreter), so the
  plugin's parent is the engine. A thread waits on a pidfd of the parent, which wakes it only
  when the parent exits: an idle plugin costs no CPU for this.
- In case the parent is not the engine (a launcher that does not ``exec``), the engine's
  address is also checked, seldom: a plugin leaves once it has stopped accepting connections
  ``FAILURES_BEFORE_EXIT`` times in a row. Every check is a TCP connection the engine must
  accept and set up, so at one check a second from each of a run's plugins the checks were a
  good part of an idle run's CPU.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
from collections.abc import Callable

CHECK_SECONDS = 5.0
FAILURES_BEFORE_EXIT = 3


def watch_engine(address: str, on_exit: Callable[[], None] = lambda: None) -> None:
    """Start daemon threads that exit the process once its parent exits, or once ``host:port``
    stops accepting."""

    def leave() -> None:
        on_exit()
        os._exit(1)

    _watch_parent(leave)
    host, _, port = address.rpartition(":")
    if host and port.isdigit():
        _start_deaf(lambda: _probe(host, int(port), leave), "engine-probe")


def _start_deaf(target: Callable[[], None], name: str) -> None:
    """Start a daemon thread that blocks every signal, so the engine's SIGINT is taken by the
    plugin's main thread, where Python runs its handlers, and not left waiting in this one."""
    kept = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())  # the thread inherits it
    try:
        threading.Thread(target=target, name=name, daemon=True).start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, kept)


def _watch_parent(leave: Callable[[], None]) -> None:
    parent = os.getppid()
    try:
        pidfd = os.pidfd_open(parent)
    except OSError:  # no pidfds (Linux < 5.3) or the parent is gone: the probe remains
        return
    if os.getppid() != parent:  # the parent exited before the pidfd was opened
        os.close(pidfd)
        leave()

    def wait() -> None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while not poller.poll():  # readable once the process has exited
            continue
        leave()

    _start_deaf(wait, "engine-watch")


def _probe(host: str, port: int, leave: Callable[[], None]) -> None:
    failures = 0
    pause = threading.Event()
    while True:
        pause.wait(CHECK_SECONDS)
        try:
            with contextlib.closing(socket.create_connection((host, port), timeout=CHECK_SECONDS)):
                failures = 0
        except OSError:
            failures += 1
            if failures >= FAILURES_BEFORE_EXIT:
                leave()
