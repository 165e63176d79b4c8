"""Runs execute outside requests, in worker processes, in order per stack, on any node.

The durable engine (:mod:`service.durable`) decides when: every accepted run hands it a ticket,
and a ticket takes its stack's next queued run in the database's order (``take``) and runs it to
its end (``execute``). A stack runs one run at a time across the fleet; different stacks run in
parallel, up to ``max_parallel_runs`` per node. Each run is a ``python -m service.worker`` process
in its own session; its JSON lines become stored events (replayed to late readers) and, at the
end, the run's result and the stack's record.

Cancel: a queued run is dropped; a running one is marked, and the node running it (this one, or
another that sees the mark within half a second) sends its worker SIGTERM (the worker passes
SIGINT to the Pulumi CLI, which stops cleanly and saves state), then SIGKILL after a grace period
followed by a recovery run.

A node that dies (or stops) during a run leaves its workflow pending: the engine executes it
again, on the node's next start or, once the node's lease has run out, on another node. The
re-execution recovers the stack first (lock cancelled, refresh with pending creates cleared) and
then carries the accepted operation through; the run records that it was recovered.

No engine runs on a node without a lease (:mod:`service.fence`). Once the node holds a lease
again, each run its fence stopped goes on here if the engine still has its workflow with this
execution, and is left to the execution that took it up otherwise (the node was taken for dead
and its workflows handed back). What a run's end does to its records is :mod:`service.outcomes`;
what its worker is told, :mod:`service.jobs`; the node's chores (lease, cancels made on other
nodes, lost tickets, pruning), :mod:`service.housekeeping`.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import logging
import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import case, select

from service import fence, jobs, outcomes, queue, retention, workers
from service.db import Database, Run, RunEvent, StackRecord, utcnow
from service.durable import DurableRuns, Handlers, NodeStopping, Owned, Superseded
from service.errors import ServiceError, ToolchainMissing
from service.fence import Fence
from service.housekeeping import Chore, Housekeeper
from service.nodes import Leases
from service.recorder import EventRecorder
from service.sealing import InvalidToken, SecretBox
from service.settings import Settings

LOG = logging.getLogger("serverless_cases.runner")
FINISHED = queue.FINISHED
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EVENT_BATCH = 50
PRUNE_SECONDS = 3600.0  # how often old runs are looked for
RECONCILE_SECONDS = 30.0  # how often queued runs are checked for a ticket the engine lost
CANCEL_POLL_SECONDS = 0.5  # how often a node looks for cancels (made on any node) of its runs
STDERR_LINES_KEPT = 2000  # a worker's stderr kept in memory for the log: its last lines
EVENT_FLUSH_SECONDS = 0.1  # how often the node's runs' new events are written


class Runner:
    def __init__(self, settings: Settings, db: Database, toolchain_bin: Path) -> None:
        self.settings = settings
        self.db = db
        self.toolchain_bin = toolchain_bin
        self.node_id = settings.node
        self.box = SecretBox(settings.passphrase_bytes())
        self.admission: contextlib.AbstractContextManager[Any] = contextlib.nullcontext() if db.shared else threading.Lock()
        """Held by whoever accepts runs in this process, from reading the stack to committing. Only
        SQLite needs it (no row locks: two deferred transactions that read and then write would
        fail). On a shared database the stack's row lock and its unique name order acceptances of
        every node, this one's threads included, so one stack's acceptance never waits for another's."""
        self.durable = DurableRuns(database_url=settings.database, data_dir=settings.data_dir,
                                   node_id=self.node_id, parallel=settings.max_parallel_runs)
        leases = Leases(db, self.node_id, ",".join(sorted(settings.roles)),
                        seconds=settings.node_lease_seconds, grace=settings.node_grace_seconds)
        self.workers = workers.Workers(toolchain_bin, settings.run_niceness, forked=settings.warm_worker,
                                       preload=settings.preload_plugins)
        self._running: dict[str, workers.Worker] = {}  # run id -> worker, on this node
        self._signalled: set[str] = set()  # running runs whose worker was told to stop
        self._stopping = threading.Event()
        self.fence = Fence(leases, self._running, self._stopping)
        self._housekeeper: Housekeeper | None = None
        self._executing = False
        self.events = EventRecorder(db, interval=EVENT_FLUSH_SECONDS, batch=EVENT_BATCH)

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> None:
        """Every node: join the fleet's nodes and connect to the engine (to hand in tickets)."""
        self.fence.join()
        self.durable.open()

    def start(self) -> None:
        """Nodes with the runs role: execute tickets (this node's own pending ones first)."""
        self._retire_legacy_runs()
        self._warm()  # before the first run is taken: it is forked once the fork server is ready
        self.durable.launch(Handlers(take=self.take, execute=self.execute))
        self._executing = True
        self.reconcile()

    def watch(self) -> None:
        """Keep this node's lease (and, with the runs role, cancels, dead nodes, pruning) going,
        and stop this node's engines whenever the lease runs out."""
        lease = self.settings.node_lease_seconds
        self._housekeeper = Housekeeper([
            Chore("renewing the lease", lease / 3, self._renew, runs_role=False),
            Chore("looking for cancels", 0.0, self._look_for_cancels),  # every round
            Chore("handing in lost tickets", RECONCILE_SECONDS, self.reconcile),
            Chore("pruning old runs", PRUNE_SECONDS, self._prune, at_once=True),
        ], stopping=self._stopping, executing=lambda: self._executing, round_seconds=CANCEL_POLL_SECONDS)
        self._housekeeper.start()
        threading.Thread(target=self.fence.watch, name="lease-watch", daemon=True).start()

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop executing and ask running workers to stop cleanly; the runs they leave stay
        pending in the engine and are carried through after this node (or another) takes them."""
        self._stopping.set()
        if self._housekeeper is not None:
            self._housekeeper.join(timeout=5)
        running = [w for w in list(self._running.values()) if w.poll() is None]
        for worker in running:
            worker.send_signal(signal.SIGTERM)
        for worker in running:
            try:
                worker.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                workers.kill_run(worker.pid)
        self.workers.close()
        self.durable.close()
        self.events.stop()
        if not running:  # a node that leaves runs behind keeps its row: its lease says when others take them
            try:
                self.fence.leases.leave()
            except Exception:  # the database may be gone already
                LOG.warning("could not remove this node's lease")

    def toolchain_ready(self) -> bool:
        return (self.toolchain_bin / "pulumi").is_file() and (self.toolchain_bin / "pulumi-language-python").is_file()

    def scheduling(self) -> bool:
        """Whether this node executes runs (for readiness)."""
        alive = self._housekeeper is not None and self._housekeeper.alive()
        return self._executing and alive and not self._stopping.is_set()

    # -- submitting and cancelling ------------------------------------------------------------
    def enqueue(self, session: Any, *, tenant_id: str, stack: StackRecord, kind: str,
                params: dict[str, Any], secret_values: dict[str, Any] | None = None,
                first: bool = False) -> Run:
        """Queue a run of ``stack`` (whose row the caller holds) in its order; its ticket is
        handed to the engine once the session commits."""
        if "runs" in self.settings.roles and not self.toolchain_ready():  # an api-only node runs nothing itself
            raise ToolchainMissing(f"the Pulumi toolchain is missing from {self.toolchain_bin}; run `make setup`")
        stack.run_seq = (stack.run_seq or 0) + 1
        run = Run(id=str(uuid.uuid4()), tenant_id=tenant_id, stack_name=stack.name, pulumi_stack=stack.pulumi_stack,
                  kind=kind, status="queued", params=params, sealed_secrets=self.box.seal(secret_values or {}),
                  queued_at=EPOCH if first else utcnow(), seq=stack.run_seq)
        session.add(run)
        stack.last_run_id = run.id
        stack.updated_at = utcnow()
        run_id, pulumi_stack = run.id, stack.pulumi_stack
        self.db.after_commit(session, lambda: self._hand_in(run_id, pulumi_stack, first))
        return run

    def _hand_in(self, run_id: str, pulumi_stack: str, first: bool) -> None:
        try:
            self.durable.submit(run_id, pulumi_stack, first=first)
        except Exception:  # the run is queued in the database: reconcile() hands its ticket in later
            LOG.exception("run %s: handing it to the engine failed; it is retried", run_id)

    def reconcile(self) -> int:
        """Hand in the tickets of queued runs the engine does not hold (their node died between
        the commit and the hand-in); how many."""
        with self.db.session() as session:
            queued = session.execute(select(Run.id, Run.pulumi_stack, Run.kind).where(Run.status == "queued")).all()
        held = self.durable.handed_in([run_id for run_id, _, _ in queued])
        missing = [(run_id, stack, kind) for run_id, stack, kind in queued if run_id not in held]
        for run_id, stack, kind in missing:
            self._hand_in(run_id, stack, kind == "recover")
        return len(missing)

    def cancel(self, run_id: str) -> str:
        """Cancel a run: returns its status afterwards (``cancelled`` or still ``running``)."""
        with self.db.session() as session:
            dropped = queue.drop(session, run_id, error_type="Cancelled", detail="cancelled before it started")
            if dropped:  # its ticket finds one run fewer to take
                run = session.get(Run, run_id)
                stack = outcomes.stack_of(session, run) if run is not None else None
                if run is not None and stack is not None:
                    outcomes.back_to_applied(session, stack, run)
                return "cancelled"
            run = session.get(Run, run_id)
            if run is None:
                raise KeyError(run_id)
            if run.status != "running":
                return run.status
            run.cancel_requested = True  # seen by the node running it, whichever it is
        self._signal_cancels([run_id])
        return "running"

    def _signal_cancels(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            worker = self._running.get(run_id)
            if worker is None or worker.poll() is not None or run_id in self._signalled:
                continue
            self._signalled.add(run_id)
            worker.send_signal(signal.SIGTERM)
            threading.Thread(target=self._kill_after_grace, args=(run_id, worker), daemon=True).start()

    def _kill_after_grace(self, run_id: str, worker: workers.Worker) -> None:
        try:
            worker.wait(timeout=self.settings.cancel_grace_seconds)
        except subprocess.TimeoutExpired:
            LOG.warning("run %s did not stop within the grace period; killing it", run_id)
            workers.kill_run(worker.pid)

    # -- housekeeping chores (:mod:`service.housekeeping`) ------------------------------------
    def _renew(self) -> None:
        self.fence.renew(self.durable.recover_node if self._executing else None)

    def _look_for_cancels(self) -> None:
        mine = list(self._running)
        if not mine:
            return
        with self.db.session() as session:
            asked = session.scalars(select(Run.id).where(Run.id.in_(mine), Run.cancel_requested.is_(True))).all()
        self._signal_cancels(list(asked))

    def _prune(self) -> None:
        """Delete old finished runs (``retention.prune``)."""
        with self.db.session() as session:
            cutoff = utcnow() - dt.timedelta(days=self.settings.run_retention_days)
            gone = retention.prune(session, older_than=cutoff, keep_per_stack=self.settings.runs_kept_per_stack)
        if gone:
            LOG.info("deleted %d finished runs older than %s days", gone, self.settings.run_retention_days)

    # -- the engine's two steps ------------------------------------------------------------------
    def take(self, pulumi_stack: str, ticket: str) -> str | None:
        """Claim the stack's next queued run (recoveries first, then acceptance order) for
        ``ticket``; the run a re-executed ticket already claimed; None if none is queued."""
        with self.db.session() as session:
            mine = session.scalar(select(Run.id).where(Run.ticket == ticket))
            if mine is not None:
                return str(mine)
            while True:
                candidate = session.scalar(
                    select(Run.id).where(Run.pulumi_stack == pulumi_stack, Run.status == "queued")
                    .order_by(case((Run.kind == "recover", 0), else_=1), Run.seq, Run.queued_at, Run.id).limit(1))
                if candidate is None:
                    return None
                if queue.claim(session, candidate, ticket=ticket, node_id=self.node_id):
                    return str(candidate)

    def execute(self, run_id: str, owned: Owned) -> None:
        """Run a claimed run to its end on this node (blocking). A second execution (the node of
        the first died or stopped) recovers the stack first, then carries the operation through.

        An execution whose engine was stopped because this node had no lease waits for one, then
        carries the run on itself (recovering the stack first) if the workflow is still its own,
        and leaves it to the execution that owns it now otherwise (``Superseded``)."""
        while True:
            try:
                started = self._start(run_id, owned)
            except (NodeStopping, Superseded):
                raise
            except Exception as exc:  # one run that cannot start must not stop the others
                LOG.exception("run %s could not start", run_id)
                self._refuse_start(run_id, exc)
                return
            if started is None:
                return
            worker, first_seq = started
            try:
                outcome, returncode = self._follow(run_id, worker, first_seq)
            finally:
                self._running.pop(run_id, None)
                self._signalled.discard(run_id)
                self._warm()
            if self.fence.was_fenced(run_id):
                LOG.warning("run %s: its engine was stopped while this node had no lease", run_id)
                continue
            if self._stopping.is_set() and "result" not in outcome and not self._cancel_asked(run_id):
                raise NodeStopping(run_id)  # left pending: carried through when a node takes it up again
            self._finish(run_id, outcome, returncode)
            return

    def _start(self, run_id: str, owned: Owned) -> tuple[workers.Worker, int] | None:
        if self._stopping.is_set():
            raise NodeStopping(run_id)
        self.fence.wait(run_id)  # no engine starts without a lease
        if not owned():  # the workflow went back to the queue (this node was taken for dead) and was taken again
            LOG.warning("run %s: another execution carries it on", run_id)
            raise Superseded(run_id)
        with self.db.session() as session:
            run = session.get(Run, run_id)
            if run is None or run.status != "running":
                return None  # finished already (the engine re-executed a step whose outcome was written)
            run.attempts = (run.attempts or 0) + 1
            run.node_id = self.node_id
            again = run.attempts > 1
            stack = outcomes.stack_of(session, run)
            if run.cancel_requested and not again:  # cancelled between its claim and its start: nothing ran
                outcomes.did_not_succeed(session, run, stack, "cancelled",
                                         {"type": "Cancelled", "detail": "cancelled before it started"})
                return None
            if again and run.attempts > outcomes.MAX_RECOVERIES + 1:
                outcomes.give_up(session, run, stack)
                return None
            previous = run.worker_pid
            first_seq = session.scalar(select(RunEvent.seq).where(RunEvent.run_id == run_id)
                                       .order_by(RunEvent.seq.desc()).limit(1)) or 0
        if again:
            LOG.warning("run %s: an earlier execution of it ended with its node or its lease; recovering the stack, then going on", run_id)
            if previous and previous not in {w.pid for w in self._running.values()} and workers.group(previous):
                workers.stop_group(previous, self.settings.cancel_grace_seconds)  # a worker of this node's last life
        self.workers.settle()  # outside any transaction: it may wait for the fork server to load
        worker = self.workers.take()
        try:
            with self.db.session() as session:
                run = session.get(Run, run_id)
                assert run is not None
                stack = outcomes.stack_of(session, run)
                secrets = self.box.open(run.sealed_secrets)
                job = jobs.describe(session, self.settings, run, secrets, toolchain_bin=self.toolchain_bin,
                                    plugin_env=self.workers.plugin_env(), recover_first=again)
                run.worker_pid = worker.pid
                if again:
                    run.recovered = True
                elif stack is not None:
                    run.params = {**run.params, "stack_status_before": stack.status}
                if stack is not None:
                    stack.status = outcomes.busy(run.kind)
                    stack.updated_at = utcnow()
                self._running[run_id] = worker
        except BaseException:
            self._running.pop(run_id, None)
            workers.dismiss(worker)
            raise
        assert worker.stdin is not None
        try:
            worker.stdin.write(json.dumps(job))
            worker.stdin.close()
        except OSError:  # the worker died before taking its job: following it reports WorkerFailed
            LOG.warning("run %s: its worker exited before taking the job", run_id)
        return worker, first_seq

    def _cancel_asked(self, run_id: str) -> bool:
        with self.db.session() as session:
            return bool(session.scalar(select(Run.cancel_requested).where(Run.id == run_id)))

    def _refuse_start(self, run_id: str, exc: Exception) -> None:
        """A run that cannot start (its sealed secrets do not open, its worker does not spawn)
        fails with a typed error, and the others go on."""
        if isinstance(exc, InvalidToken):
            reason = "its secret arguments cannot be unsealed (was the passphrase changed?)"
        elif isinstance(exc, ServiceError):  # e.g. the tenant's AWS role was removed after the run was queued
            reason = str(exc.detail)
        else:
            reason = f"its worker could not start ({type(exc).__name__})"
        with self.db.session() as session:
            if not queue.fail(session, run_id, error_type="RunStartFailed", detail=f"the run could not start: {reason}",
                              from_status="running"):
                return
            run = session.get(Run, run_id)
            assert run is not None
            outcomes.stack_after_failure(session, run, outcomes.stack_of(session, run))

    def _warm(self) -> None:
        """Start (or replace) the fork server, only while no run is in progress: its imports
        cost CPU that runs in progress would otherwise have."""
        if self._running or not self.toolchain_ready() or self._stopping.is_set():
            return
        self.workers.warm()

    # -- following a worker ------------------------------------------------------------------
    def _follow(self, run_id: str, worker: workers.Worker, first_seq: int) -> tuple[dict[str, Any], int]:
        outcome: dict[str, Any] = {}
        stderr_lines: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        reader = threading.Thread(target=lambda: stderr_lines.extend(worker.stderr or []), daemon=True)
        reader.start()
        seq = first_seq
        try:
            assert worker.stdout is not None
            for line in worker.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if "event" in message:
                    seq += 1
                    self.events.add(run_id, seq, message["event"])
                else:
                    outcome = message
            # The last events wait for the database as long as this node holds its lease; after
            # that, the run is carried on (here or by another node) and reports its events anew.
            # The worker is followed to its end whatever happens to its events: a worker nobody
            # follows would be out of reach of a cancel and of the fence.
            while not self.events.record(run_id):
                if not self.fence.holds() or self._stopping.wait(fence.WATCH_SECONDS):
                    self.events.discard(run_id)
                    break
            returncode = worker.wait()
            reader.join(timeout=5)
            if stderr_lines:
                level = logging.INFO if "result" in outcome else logging.WARNING
                LOG.log(level, "run %s worker stderr:\n%s", run_id, "".join(stderr_lines)[-20000:])
            return outcome, returncode
        except Exception:
            LOG.exception("following run %s failed", run_id)
            if worker.poll() is None:  # no engine runs on unfollowed, out of reach of a cancel and the fence
                workers.kill_run(worker.pid)
            return {"error": {"type": "ServiceError", "detail": "the run's worker failed"}}, -1

    def _finish(self, run_id: str, outcome: dict[str, Any], returncode: int) -> None:
        with self.db.session() as session:
            run = session.get(Run, run_id)
            if run is None or run.status != "running" or run.node_id != self.node_id:
                return  # another node took the run over (this node had lost its lease)
            stack = outcomes.stack_of(session, run)
            if outcome.get("stack_settings"):
                outcomes.keep_stack_settings(session, run.pulumi_stack, outcome["stack_settings"])
            if "result" in outcome:
                outcomes.succeeded(session, run, stack, outcome["result"], self.settings.workspaces_dir)
                return
            status, error, recover = outcomes.ending(run, outcome.get("error"), returncode)
            outcomes.did_not_succeed(session, run, stack, status, error)
            if recover and stack is not None:
                self._queue_recovery(session, run, stack)

    def _queue_recovery(self, session: Any, run: Run, stack: StackRecord) -> bool:
        """Queue a recovery of ``run``'s stack, first in its queue (unless ``outcomes.may_recover``
        says its recoveries keep failing)."""
        if not outcomes.may_recover(session, run, stack):
            LOG.error("stack %s: %d recoveries failed in a row; not recovering it again", stack.name,
                      outcomes.MAX_RECOVERIES)
            return False
        self.enqueue(session, tenant_id=run.tenant_id, stack=stack, kind="recover", params=dict(run.params),
                     first=True)
        return True

    # -- upgrades ------------------------------------------------------------------------------
    def _retire_legacy_runs(self) -> None:
        """Runs a version before the durable engine left running have no ticket to carry them on:
        they are marked interrupted and their stacks recovered (first in their queues)."""
        with self.db.session() as session:
            for run in session.scalars(select(Run).where(Run.status == "running", Run.ticket.is_(None))).all():
                if run.worker_pid and workers.group(run.worker_pid):
                    workers.stop_group(run.worker_pid, self.settings.cancel_grace_seconds)
                stack = outcomes.stack_of(session, run)
                outcomes.did_not_succeed(session, run, stack, "interrupted", {
                    "type": "Interrupted",
                    "detail": "the service stopped while this run was in progress; the stack was recovered"})
                if stack is not None:
                    stack.status = "recovering"
                    self._queue_recovery(session, run, stack)
