"""No engine runs on a node without a lease.

The node renews its lease (``nodes.Leases``) and, with the runs role, takes over the runs of
nodes whose leases ran out. Once its own lease has run out, whether renewals fail or hang (a
link that drops packets blocks them), it kills the engines of its runs in progress: another
node may be about to carry them on, and two engines must not write one stack. Runs start (or
record their last events) only under a lease; a node that the others took for dead joins again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from service import workers
from service.durable import NodeStopping
from service.nodes import Leases

LOG = logging.getLogger("serverless_cases.fence")
WATCH_SECONDS = 0.2  # how often a node checks that its own lease has not run out


class Fence:
    def __init__(self, leases: Leases, running: dict[str, workers.Worker], stopping: threading.Event) -> None:
        self.leases = leases
        self._running = running  # run id -> worker, on this node (the runner's own)
        self._stopping = stopping
        self._leased = threading.Event()  # this node holds a lease the others do not take for dead
        self._fenced: set[str] = set()  # runs stopped because this node lost its lease
        self._lock = threading.Lock()

    def join(self) -> None:
        """Join the fleet's nodes with a fresh lease."""
        self.leases.join()
        self._leased.set()

    def lost(self) -> None:
        """This node's lease has run out: no run of it may go on writing."""
        self._leased.clear()
        self._fence()

    def renew(self, recover_node: Callable[[str], int] | None) -> None:
        """Renew this node's lease and, given ``recover_node`` (a node with the runs role), take
        over dead nodes' runs with it. A node whose lease the others take for dead (or took over)
        stops its runs' engines and joins again."""
        try:
            held = self.leases.renew()
        except Exception:  # the watch stops the engines once the lease has run out
            LOG.exception("could not renew this node's lease")
            return
        if not held:
            self.lost()
            self.leases.join()
        self._leased.set()
        if recover_node is not None:
            for node_id in self.leases.dead():
                count = self.leases.take_over(node_id, recover_node)
                if count is not None:
                    LOG.warning("node %s is dead (its lease ran out): %d of its runs are carried on", node_id, count)

    def watch(self) -> None:
        """Until the node stops: stop its engines whenever its lease has run out."""
        while not self._stopping.wait(WATCH_SECONDS):
            if self.leases.lapsed():
                self.lost()

    def _fence(self) -> None:
        with self._lock:
            live = {run_id: w for run_id, w in list(self._running.items())
                    if w.poll() is None and run_id not in self._fenced}
            if live:
                LOG.error("this node has no lease: stopping the engines of its %d runs", len(live))
            for run_id, worker in live.items():
                self._fenced.add(run_id)
                workers.kill_run(worker.pid)

    def was_fenced(self, run_id: str) -> bool:
        """Whether the run's engine was stopped for want of a lease (asked once, when it ended)."""
        with self._lock:
            fenced = run_id in self._fenced
            self._fenced.discard(run_id)
        return fenced

    def holds(self) -> bool:
        return self._leased.is_set() and not self.leases.lapsed()

    def wait(self, run_id: str) -> None:
        """Return once this node holds a lease; NodeStopping if it stops first."""
        while not self.holds():
            if self._stopping.wait(WATCH_SECONDS):
                raise NodeStopping(run_id)
