"""Recording runs' events: one writer per node.

Every run this node follows hands its events to the node's recorder. The recorder writes the
pending events of all runs in one transaction, every ``interval`` seconds, or sooner once a run
has a batch waiting. Readers then see an event within about ``interval``.

One writer, because SQLite has one write lock and its busy handler is not fair: when each run
wrote its own events, 32 runs meant 32 writers polling for the lock, and the node's lease renewal
waited behind them (9.6 s in a test with the cores busy; the lease is 15 s). A node that cannot
renew in time stops its own runs. On PostgreSQL one writer also means one transaction, not one
per run, for each round.

A database that cannot be reached keeps the events pending, in order, for the next round.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import insert

from service.db import Database, RunEvent

LOG = logging.getLogger("serverless_cases.recorder")


class EventRecorder:
    def __init__(self, db: Database, *, interval: float, batch: int) -> None:
        self.db, self.interval, self.batch = db, interval, batch
        self._pending: dict[str, list[tuple[int, Any]]] = {}  # run id -> (seq, event), in seq order
        self._guard = threading.Lock()  # protects _pending and _thread
        self._writing = threading.Lock()  # one write at a time, through its commit: events land in order
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False  # the last write failed (logged once per outage)

    def add(self, run_id: str, seq: int, event: Any) -> None:
        """Hand in one event of a run; it is written within about ``interval`` seconds."""
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-recorder", daemon=True)
                self._thread.start()
            waiting = self._pending.setdefault(run_id, [])
            waiting.append((seq, event))
            full = len(waiting) >= self.batch
        if full:
            self._wake.set()

    def record(self, run_id: str) -> bool:
        """Write what is pending now; whether none of ``run_id``'s events is left pending."""
        self._write()
        with self._guard:
            return not self._pending.get(run_id)

    def discard(self, run_id: str) -> None:
        """Drop a run's pending events: its execution is over here, and the one that carries the
        run on reports them anew."""
        with self._writing, self._guard:
            self._pending.pop(run_id, None)

    def stop(self) -> None:
        """Stop the background writer after one last write."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self._write()
        self._write()

    def _write(self) -> None:
        with self._writing:
            with self._guard:
                batch = {run_id: events for run_id, events in self._pending.items() if events}
                for run_id in batch:
                    self._pending[run_id] = []
            if not batch:
                return
            rows = [{"run_id": run_id, "seq": seq, "data": event}
                    for run_id, events in batch.items() for seq, event in events]
            try:
                with self.db.session() as session:
                    session.execute(insert(RunEvent), rows)
            except Exception:
                with self._guard:  # back in front of anything added meanwhile
                    for run_id, events in batch.items():
                        self._pending[run_id] = events + self._pending.get(run_id, [])
                if not self._failing:
                    LOG.warning("the events of %d run(s) cannot be recorded now; kept for the next try",
                                len(batch), exc_info=True)
                self._failing = True
                return
            with self._guard:  # runs with nothing new since are forgotten
                for run_id in batch:
                    if not self._pending.get(run_id):
                        self._pending.pop(run_id, None)
            if self._failing:
                LOG.warning("runs' events are recorded again")
            self._failing = False
