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

No engine runs on a node without a lease: a node whose lease ran out kills its engines (whether
renewals fail or hang) and starts none until it holds a lease again. Then each run it stopped
goes on here if the engine still has its workflow with this execution, and is left to the
execution that took it up otherwise (the node was taken for dead and its workflows handed back).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime as dt
import hashlib
import json
import logging
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import case, select

from programs import backend, targets
from service import identities, policy, queue, retention, workers
from service.db import AppliedArguments, Database, Run, RunEvent, StackRecord, StackSettings, utcnow
from service.durable import DurableRuns, Handlers, NodeStopping, Owned, Superseded
from service.errors import ServiceError, ToolchainMissing
from service.nodes import Leases
from service.recorder import EventRecorder
from service.settings import Settings

LOG = logging.getLogger("serverless_cases.runner")
FINISHED = queue.FINISHED
MUTATING = ("up", "update", "destroy")
_BUSY = {"up": "creating", "update": "updating", "destroy": "destroying", "refresh": "refreshing",
         "preview": "previewing", "recover": "recovering"}
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EVENT_BATCH = 50
PRUNE_SECONDS = 3600.0  # how often old runs are looked for
RECONCILE_SECONDS = 30.0  # how often queued runs are checked for a ticket the engine lost
CANCEL_POLL_SECONDS = 0.5  # how often a node looks for cancels (made on any node) of its runs
LEASE_WATCH_SECONDS = 0.2  # how often a node checks that its own lease has not run out
STDERR_LINES_KEPT = 2000  # a worker's stderr kept in memory for the log: its last lines
EVENT_FLUSH_SECONDS = 0.1  # how often the node's runs' new events are written


class SecretBox:
    """Seals secret argument values of queued runs (Fernet, key derived from the passphrase)."""

    def __init__(self, key_material: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"serverless-cases/runs\0" + key_material)
                                                       .digest()))

    def seal(self, values: dict[str, Any]) -> str | None:
        return self._fernet.encrypt(json.dumps(values).encode()).decode() if values else None

    def open(self, sealed: str | None) -> dict[str, Any]:
        return json.loads(self._fernet.decrypt(sealed.encode())) if sealed else {}


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
        self.leases = Leases(db, self.node_id, ",".join(sorted(settings.roles)),
                             seconds=settings.node_lease_seconds, grace=settings.node_grace_seconds)
        self.workers = workers.Workers(toolchain_bin, settings.run_niceness, forked=settings.warm_worker,
                                       preload=settings.preload_plugins)
        self._running: dict[str, workers.Worker] = {}  # run id -> worker, on this node
        self._signalled: set[str] = set()  # running runs whose worker was told to stop
        self._fenced: set[str] = set()  # runs stopped because this node lost its lease
        self._fencing = threading.Lock()
        self._leased = threading.Event()  # this node holds a lease the others do not take for dead
        self._stopping = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self._executing = False
        self.events = EventRecorder(db, interval=EVENT_FLUSH_SECONDS, batch=EVENT_BATCH)

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> None:
        """Every node: join the fleet's nodes and connect to the engine (to hand in tickets)."""
        self.leases.join()
        self._leased.set()
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
        self._housekeeper = threading.Thread(target=self._housekeep, name="housekeeper", daemon=True)
        self._housekeeper.start()
        threading.Thread(target=self._watch_lease, name="lease-watch", daemon=True).start()

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
                self.leases.leave()
            except Exception:  # the database may be gone already
                LOG.warning("could not remove this node's lease")

    def toolchain_ready(self) -> bool:
        return (self.toolchain_bin / "pulumi").is_file() and (self.toolchain_bin / "pulumi-language-python").is_file()

    def scheduling(self) -> bool:
        """Whether this node executes runs (for readiness)."""
        alive = self._housekeeper is not None and self._housekeeper.is_alive()
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
                stack = self._stack(session, run) if run is not None else None
                if run is not None and stack is not None:
                    _back_to_applied(session, stack, run)
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

    # -- housekeeping -------------------------------------------------------------------------
    def _housekeep(self) -> None:
        renewed = reconciled = time.monotonic()
        pruned = renewed - PRUNE_SECONDS
        while not self._stopping.wait(CANCEL_POLL_SECONDS):
            now = time.monotonic()
            if now - renewed >= self.settings.node_lease_seconds / 3:
                renewed = now
                self._guarded(self._renew)
            if not self._executing:
                continue
            self._guarded(self._look_for_cancels)
            if now - reconciled >= RECONCILE_SECONDS:
                reconciled = now
                self._guarded(self.reconcile)
            if now - pruned >= PRUNE_SECONDS:
                pruned = now
                self._guarded(self._prune)

    @staticmethod
    def _guarded(job: Any) -> None:
        try:
            job()
        except Exception:  # housekeeping must go on: the next round retries
            LOG.exception("housekeeping: %s failed", getattr(job, "__name__", job))

    def _renew(self) -> None:
        """Renew this node's lease and take over dead nodes' runs. A node whose lease the others
        take for dead (or took over) stops its runs' engines and joins again."""
        try:
            held = self.leases.renew()
        except Exception:  # the lease watch stops the engines once the lease has run out
            LOG.exception("could not renew this node's lease")
            return
        if not held:
            self._leased.clear()
            self._fence()
            self.leases.join()
        self._leased.set()
        if self._executing:
            for node_id in self.leases.dead():
                count = self.leases.take_over(node_id, self.durable.recover_node)
                if count is not None:
                    LOG.warning("node %s is dead (its lease ran out): %d of its runs are carried on", node_id, count)

    def _watch_lease(self) -> None:
        """Stop this node's engines once its lease has run out, whether renewals fail or hang (a
        link that drops packets blocks them): another node may be about to carry the runs on,
        and two engines must not write one stack. Runs start again only under a lease."""
        while not self._stopping.wait(LEASE_WATCH_SECONDS):
            if self.leases.lapsed():
                self._leased.clear()
                self._fence()

    def _fence(self) -> None:
        with self._fencing:
            live = {run_id: w for run_id, w in list(self._running.items())
                    if w.poll() is None and run_id not in self._fenced}
            if live:
                LOG.error("this node has no lease: stopping the engines of its %d runs", len(live))
            for run_id, worker in live.items():
                self._fenced.add(run_id)
                workers.kill_run(worker.pid)

    def _holds_lease(self) -> bool:
        return self._leased.is_set() and not self.leases.lapsed()

    def _await_lease(self, run_id: str) -> None:
        while not self._holds_lease():
            if self._stopping.wait(LEASE_WATCH_SECONDS):
                raise NodeStopping(run_id)

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
            with self._fencing:
                fenced = run_id in self._fenced
                self._fenced.discard(run_id)
            if fenced:
                LOG.warning("run %s: its engine was stopped while this node had no lease", run_id)
                continue
            if self._stopping.is_set() and "result" not in outcome and not self._cancel_asked(run_id):
                raise NodeStopping(run_id)  # left pending: carried through when a node takes it up again
            self._finish(run_id, outcome, returncode)
            return

    def _start(self, run_id: str, owned: Owned) -> tuple[workers.Worker, int] | None:
        if self._stopping.is_set():
            raise NodeStopping(run_id)
        self._await_lease(run_id)  # no engine starts without a lease
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
            stack = self._stack(session, run)
            if run.cancel_requested and not again:  # cancelled between its claim and its start: nothing ran
                run.status, run.finished_at, run.sealed_secrets = "cancelled", utcnow(), None
                run.error_type, run.error_detail = "Cancelled", "cancelled before it started"
                if stack is not None:
                    stack.status, stack.updated_at = _status_after_failure(run), utcnow()
                    _back_to_applied(session, stack, run)
                return None
            if again and run.attempts > MAX_RECOVERIES + 1:
                self._give_up(session, run, stack)
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
                stack = self._stack(session, run)
                secrets = self.box.open(run.sealed_secrets)
                job = self._job(session, run, secrets, recover_first=again)
                run.worker_pid = worker.pid
                if again:
                    run.recovered = True
                elif stack is not None:
                    run.params = {**run.params, "stack_status_before": stack.status}
                if stack is not None:
                    stack.status = _BUSY.get(run.kind, "busy")
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

    def _give_up(self, session: Any, run: Run, stack: StackRecord | None) -> None:
        run.status, run.finished_at, run.sealed_secrets = "failed", utcnow(), None
        run.error_type = "RecoveryFailed"
        run.error_detail = (f"the run's node died {run.attempts - 1} times while it ran; it is not carried on again "
                            "and its stack is left unrecoverable: refresh, change or delete it")
        if stack is not None:
            stack.status, stack.updated_at = "unrecoverable", utcnow()
            _back_to_applied(session, stack, run)

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
            stack = self._stack(session, run)
            if stack is not None:
                stack.status = _status_after_failure(run)
                _back_to_applied(session, stack, run)
                stack.updated_at = utcnow()

    def _warm(self) -> None:
        """Start (or replace) the fork server, only while no run is in progress: its imports
        cost CPU that runs in progress would otherwise have."""
        if self._running or not self.toolchain_ready() or self._stopping.is_set():
            return
        self.workers.warm()

    def _job(self, session: Any, run: Run, secrets: dict[str, Any], *, recover_first: bool) -> dict[str, Any]:
        identity = identities.for_target(session, run.tenant_id, run.params["target"])
        applied = session.get(AppliedArguments, run.pulumi_stack)
        stored = session.get(StackSettings, run.pulumi_stack)
        packs, configs = policy.job_packs(policy.for_tenant(session, run.tenant_id),
                                          self.settings.workspaces_dir / run.pulumi_stack / ".policy")
        env = targets.engine_env(run.params["target"], workers.base_env(), str(self.toolchain_bin))
        env.update(self.settings.pulumi_secrets_env())
        env.update(backend.compression_env(self.settings.state_compression))
        env.update({"PULUMI_BACKEND_URL": self.settings.backend,
                    "SANDBOX_CLOUD_DIR": str(self.settings.sandbox_cloud_dir),
                    "SANDBOX_LATENCY_MS": str(self.settings.sandbox_latency_ms)})
        if self.settings.sandbox_gate_dir is not None:
            env["SANDBOX_GATE_DIR"] = str(self.settings.sandbox_gate_dir)
        env.update(self.workers.plugin_env())
        return {
            "run_id": run.id, "kind": run.kind, "pulumi_stack": run.pulumi_stack, "case": run.params["case"],
            "target": run.params["target"], "args": run.params.get("args", {}), "secret_args": secrets,
            "workspace_dir": str(self.settings.workspaces_dir / run.pulumi_stack), "env": env,
            "toolchain_bin": str(self.toolchain_bin), "secrets_provider": self.settings.secrets_provider,
            "secret_arg_names": list(run.params.get("secret_arg_names", [])),
            "kept_secret_names": list(applied.secret_arg_names) if applied is not None else [],
            "unprotect": bool(run.params.get("delete_data")),
            "assume_roles": identity.assume_roles(run.tenant_id),
            "policy_packs": packs, "policy_pack_configs": configs,
            "stack_settings": stored.text if stored is not None else None,
            "recover_first": recover_first, "parallel": self.settings.run_parallelism,
        }

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
                if not self._holds_lease() or self._stopping.wait(LEASE_WATCH_SECONDS):
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
            stack = self._stack(session, run)
            run.finished_at, run.sealed_secrets = utcnow(), None
            if outcome.get("stack_settings"):
                _keep_stack_settings(session, run.pulumi_stack, outcome["stack_settings"])
            if "result" in outcome:
                result = outcome["result"]
                run.status, run.summary = "succeeded", result.get("summary", {})
                if stack is not None:
                    if result.get("removed"):
                        self._cancel_queued(session, run, "the stack was deleted before this run started")
                        shutil.rmtree(self.settings.workspaces_dir / run.pulumi_stack, ignore_errors=True)
                        for kept in (session.get(AppliedArguments, stack.pulumi_stack),
                                     session.get(StackSettings, stack.pulumi_stack)):
                            if kept is not None:
                                session.delete(kept)
                        session.delete(stack)
                        return
                    if run.kind in MUTATING_CONFIG:
                        _record_applied(session, run)
                    stack.outputs = {k: "[secret]" if v.get("secret") else v.get("value")
                                     for k, v in result.get("outputs", {}).items()}
                    if result.get("resource_count") is not None:  # a preview changes nothing
                        stack.resource_count = result["resource_count"]
                    stack.status = "ready"
            else:
                status, error, recover = self._ending(run, outcome.get("error"), returncode)
                run.status, run.error_type, run.error_detail = status, error["type"], error["detail"]
                run.summary = error.get("summary") or {}
                if stack is not None:
                    stack.status = _status_after_failure(run)
                    _back_to_applied(session, stack, run)
                    if recover:
                        self._queue_recovery(session, run, stack)
            if stack is not None:
                stack.updated_at = utcnow()

    def _ending(self, run: Run, reported: dict[str, Any] | None, returncode: int) -> tuple[str, dict[str, Any], bool]:
        """How a run that did not succeed ended: (status, typed error, whether its stack needs a
        recovery). Only a cancel a caller asked for is ``Cancelled``; a worker that dies (killed
        by the OOM killer, crashed) is ``WorkerFailed``, and its engine is stopped and its stack
        recovered."""
        asked = bool(run.cancel_requested)
        killed = returncode < 0
        if asked and killed:
            return "cancelled", {"type": "Cancelled", "detail": "stopped after the cancel grace period"}, True
        if asked and reported is not None and reported["type"] == "Cancelled":
            return "cancelled", reported, False
        if reported is not None and reported["type"] != "Cancelled" and not killed:
            return "failed", reported, False  # the run itself failed, and said why
        if run.worker_pid:  # its engine must not outlive it: the recovery would race it for the stack
            workers.kill_run(run.worker_pid)
        how = f"killed by signal {-returncode}" if killed else \
            "stopped by a signal the service did not send" if reported is not None else f"exited with {returncode}"
        return "failed", {"type": "WorkerFailed", "detail": f"the run's worker died ({how}) before the run ended; "
                          "its stack is recovered before its next run"}, True

    def _queue_recovery(self, session: Any, run: Run, stack: StackRecord) -> bool:
        """Queue a recovery of ``run``'s stack, first in its queue, unless its last MAX_RECOVERIES
        recoveries all failed: the stack then stops as ``unrecoverable`` and the run says why,
        instead of recovering forever (a person must look: refresh, change or delete it)."""
        if recoveries_failed_in_a_row(session, stack.pulumi_stack) >= MAX_RECOVERIES:
            stack.status = "unrecoverable"
            run.error_type = "RecoveryFailed"
            run.error_detail = (f"{run.error_detail} ({MAX_RECOVERIES} recoveries of the stack failed in a row: it is "
                                "left unrecoverable; refresh, change or delete it)")
            LOG.error("stack %s: %d recoveries failed in a row; not recovering it again", stack.name, MAX_RECOVERIES)
            return False
        self.enqueue(session, tenant_id=run.tenant_id, stack=stack, kind="recover", params=dict(run.params),
                     first=True)
        return True

    @staticmethod
    def _cancel_queued(session: Any, after: Run, reason: str) -> None:
        """Cancel the runs of ``after``'s stack still queued (behind a destroy that removed it), each
        with the same conditional transition a cancel uses (a ticket may be claiming one)."""
        for run_id in session.scalars(select(Run.id).where(Run.pulumi_stack == after.pulumi_stack,
                                                           Run.id != after.id, Run.status == "queued")).all():
            queue.drop(session, run_id, error_type="StackDeleted", detail=reason)

    @staticmethod
    def _stack(session: Any, run: Run) -> StackRecord | None:
        return session.scalar(select(StackRecord).where(StackRecord.pulumi_stack == run.pulumi_stack))

    # -- upgrades ------------------------------------------------------------------------------
    def _retire_legacy_runs(self) -> None:
        """Runs a version before the durable engine left running have no ticket to carry them on:
        they are marked interrupted and their stacks recovered (first in their queues)."""
        with self.db.session() as session:
            for run in session.scalars(select(Run).where(Run.status == "running", Run.ticket.is_(None))).all():
                if run.worker_pid and workers.group(run.worker_pid):
                    workers.stop_group(run.worker_pid, self.settings.cancel_grace_seconds)
                run.status, run.finished_at, run.sealed_secrets = "interrupted", utcnow(), None
                run.error_type = "Interrupted"
                run.error_detail = "the service stopped while this run was in progress; the stack was recovered"
                stack = self._stack(session, run)
                if stack is not None:
                    stack.status = "recovering"
                    _back_to_applied(session, stack, run)
                    self._queue_recovery(session, run, stack)


def _keep_stack_settings(session: Any, pulumi_stack: str, text: str) -> None:
    kept = session.get(StackSettings, pulumi_stack)
    if kept is None:
        session.add(StackSettings(pulumi_stack=pulumi_stack, text=text, updated_at=utcnow()))
    elif kept.text != text:
        kept.text, kept.updated_at = text, utcnow()


MUTATING_CONFIG = ("up", "update")  # the runs that apply the stack's arguments
MAX_RECOVERIES = 3


def recoveries_failed_in_a_row(session: Any, pulumi_stack: str) -> int:
    """How many of the stack's latest finished runs are recoveries that did not succeed."""
    latest = session.execute(select(Run.kind, Run.status).where(
        Run.pulumi_stack == pulumi_stack, Run.finished_at.is_not(None)).order_by(Run.finished_at.desc()).limit(
        MAX_RECOVERIES + 1)).all()
    count = 0
    for kind, status in latest:
        if kind != "recover" or status == "succeeded":
            break
        count += 1
    return count


def _record_applied(session: Any, run: Run) -> None:
    applied = session.get(AppliedArguments, run.pulumi_stack)
    if applied is None:
        applied = AppliedArguments(pulumi_stack=run.pulumi_stack)
        session.add(applied)
    applied.args = dict(run.params.get("args", {}))
    applied.secret_arg_names = list(run.params.get("secret_arg_names", []))
    applied.run_id, applied.applied_at = run.id, utcnow()


def _back_to_applied(session: Any, stack: StackRecord, run: Run) -> None:
    """A change that did not apply (failed, cancelled, interrupted) leaves the stack's desired
    arguments (what its next run applies) as the latest change still to come has them (queued or
    running: it carries its own), else as the last successful run applied them. A stack that
    never applied anything keeps its first arguments."""
    if run.kind not in MUTATING_CONFIG:
        return
    pending = session.scalars(select(Run).where(
        Run.pulumi_stack == stack.pulumi_stack, Run.id != run.id, Run.kind.in_(MUTATING_CONFIG),
        Run.status.in_(("queued", "running"))).order_by(Run.queued_at.desc()).limit(1)).first()
    if pending is not None:
        stack.args = dict(pending.params.get("args", {}))
        stack.secret_arg_names = list(pending.params.get("secret_arg_names", []))
        return
    applied = session.get(AppliedArguments, stack.pulumi_stack)
    if applied is not None:
        stack.args, stack.secret_arg_names = dict(applied.args), list(applied.secret_arg_names)


def _status_after_failure(run: Run) -> str:
    """A failed or cancelled change leaves the stack failed/cancelled; a failed preview or
    refresh leaves it as it was."""
    if run.kind in MUTATING or run.kind == "recover":
        return "cancelled" if run.status == "cancelled" else "failed"
    before = run.params.get("stack_status_before", "ready")
    return str(before) if before not in _BUSY.values() else "ready"


