"""A node's housekeeping: chores done in rounds by one thread, for as long as the node runs.

Each chore has its period; a round comes every ``round_seconds`` (the shortest period) and does the
chores that are due. Chores of the runs role (looking for cancels, handing in lost tickets,
pruning) wait until the node executes runs; the lease's renewal does not. A chore that fails is
logged and tried again when it is next due: one failure stops neither it nor the others (the
node's readiness reports a housekeeper that is gone, not a chore that failed once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LOG = logging.getLogger("serverless_cases.housekeeping")


@dataclass(frozen=True)
class Chore:
    name: str
    every: float
    """Seconds between two of its rounds."""
    job: Callable[[], object]
    runs_role: bool = True
    """Only while the node executes runs."""
    at_once: bool = False
    """Due in the first round (else after its first period)."""


class Housekeeper:
    def __init__(self, chores: list[Chore], *, stopping: threading.Event, executing: Callable[[], bool],
                 round_seconds: float) -> None:
        self.chores = chores
        self._stopping = stopping
        self._executing = executing
        self._round = round_seconds
        self._thread = threading.Thread(target=self._rounds, name="housekeeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout=timeout)

    def _rounds(self) -> None:
        started = time.monotonic()
        last = {chore.name: started - chore.every if chore.at_once else started for chore in self.chores}
        while not self._stopping.wait(self._round):
            executing = self._executing()
            for chore in self.chores:
                now = time.monotonic()
                if (executing or not chore.runs_role) and now - last[chore.name] >= chore.every:
                    last[chore.name] = now
                    try:
                        chore.job()
                    except Exception:  # housekeeping must go on: the chore's next round retries
                        LOG.exception("housekeeping: %s failed", chore.name)
