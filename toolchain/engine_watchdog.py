"""Exit a plugin whose engine has gone away.

The engine normally stops its plugins; an engine killed with SIGKILL cannot, and its
language host and providers would wait forever. Like Pulumi's own plugins, ours check the
engine's address and leave when it stops answering.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

CHECK_SECONDS = 1.0
FAILURES_BEFORE_EXIT = 3


def watch_engine(address: str, on_exit: Callable[[], None] = lambda: None) -> None:
    """Start a daemon thread that exits the process once ``host:port`` stops accepting."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return

    def check() -> None:
        failures = 0
        while True:
            threading.Event().wait(CHECK_SECONDS)
            try:
                socket.create_connection((host, int(port)), timeout=CHECK_SECONDS).close()
                failures = 0
            except OSError:
                failures += 1
                if failures >= FAILURES_BEFORE_EXIT:
                    on_exit()
                    os._exit(1)

    threading.Thread(target=check, name="engine-watchdog", daemon=True).start()
