"""Runs execute outside requests, in worker processes, in order per stack.

The queue is the database: a run is ``queued`` until the scheduler starts it. A stack runs
one run at a time, oldest first; different stacks run in parallel up to
``max_parallel_runs``. Each run is a ``python -m service.worker`` process in its own
session; its JSON lines become stored events (replayed to late readers) and, at the end,
the run's result and the stack's record.

Cancel: a queued run is dropped; a running one gets SIGTERM (the worker passes SIGINT to
the Pulumi CLI, which stops cleanly and saves state), then SIGKILL after a grace period
followed by a recovery run.

Start-up recovery: runs left ``running`` by a killed service are marked ``interrupted`` and
a ``recover`` run (cancel the lock, refresh with pending creates cleared) is queued first for
each of their stacks. A worker that outlived the service is stopped as a cancel would stop
it (killed after the grace period) before its stack's recovery starts.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from programs import targets
from programs.targets import REPO_ROOT
from service import identities, policy, queue, retention
from service.db import AppliedArguments, Database, Run, RunEvent, StackRecord, utcnow
from service.errors import ServiceError, ToolchainMissing
from service.settings import Settings

LOG = logging.getLogger("serverless_cases.runner")
ACTIVE = ("queued", "running")
FINISHED = queue.FINISHED
MUTATING = ("up", "update", "destroy")
_BUSY = {"up": "creating", "update": "updating", "destroy": "destroying", "refresh": "refreshing",
         "preview": "previewing", "recover": "recovering"}
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EVENT_BATCH = 50
PRUNE_SECONDS = 3600.0  # how often old runs are looked for
STDERR_LINES_KEPT = 2000  # a worker's stderr kept in memory for the log: its last lines
EVENT_FLUSH_SECONDS = 0.1


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
        self.box = SecretBox(settings.passphrase_bytes())
        self._wake = threading.Condition()
        self.admission = threading.Lock()
        """Held by whoever accepts runs, from reading the stack to committing: acceptance order
        is then queue order (``queued_at``) on any database."""
        self._running: dict[str, subprocess.Popen[str]] = {}  # run id -> worker
        self._cancels: set[str] = set()  # running runs a caller asked to cancel
        self._pruned_at = -PRUNE_SECONDS
        self._busy_stacks: set[str] = set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._spares: list[subprocess.Popen[str]] = []  # workers waiting for a run
        self._spares_lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        self._replenish()
        self._thread = threading.Thread(target=self._schedule, name="run-scheduler", daemon=True)
        self._thread.start()

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop scheduling and ask running workers to stop cleanly; the runs they leave are
        recovered on the next start."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._spares_lock:
            spares, self._spares = self._spares, []
        for spare in spares:  # it has no run: closing its input ends it
            _end_spare(spare)
        workers = [w for w in list(self._running.values()) if w.poll() is None]
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)

    def toolchain_ready(self) -> bool:
        return (self.toolchain_bin / "pulumi").is_file() and (self.toolchain_bin / "pulumi-language-python").is_file()

    def scheduling(self) -> bool:
        """Whether the run scheduler is alive (for readiness)."""
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # -- submitting and cancelling ------------------------------------------------------------
    def enqueue(self, session: Any, *, tenant_id: str, stack: StackRecord, kind: str,
                params: dict[str, Any], secret_values: dict[str, Any] | None = None,
                first: bool = False) -> Run:
        if "runs" in self.settings.roles and not self.toolchain_ready():  # an api-only node runs nothing itself
            raise ToolchainMissing(f"the Pulumi toolchain is missing from {self.toolchain_bin}; run `make setup`")
        run = Run(id=str(uuid.uuid4()), tenant_id=tenant_id, stack_name=stack.name, pulumi_stack=stack.pulumi_stack,
                  kind=kind, status="queued", params=params, sealed_secrets=self.box.seal(secret_values or {}),
                  queued_at=EPOCH if first else utcnow())
        session.add(run)
        stack.last_run_id = run.id
        stack.updated_at = utcnow()
        return run

    def cancel(self, run_id: str) -> str:
        """Cancel a run: returns its status afterwards (``cancelled`` or still ``running``)."""
        with self.db.session() as session:
            dropped = queue.drop(session, run_id, error_type="Cancelled", detail="cancelled before it started")
            if dropped:
                run = session.get(Run, run_id)
                stack = self._stack(session, run) if run is not None else None
                if run is not None and stack is not None:
                    _back_to_applied(session, stack, run)
        if dropped:  # after the commit: the scheduler holds its lock while it writes
            self.wake()
            return "cancelled"
        with self.db.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise KeyError(run_id)
            if run.status != "running":
                return run.status
        worker = self._running.get(run_id)
        if worker is not None and worker.poll() is None:
            self._cancels.add(run_id)
            worker.send_signal(signal.SIGTERM)
            threading.Thread(target=self._kill_after_grace, args=(run_id, worker), daemon=True).start()
        return "running"

    def _kill_after_grace(self, run_id: str, worker: subprocess.Popen[str]) -> None:
        try:
            worker.wait(timeout=self.settings.cancel_grace_seconds)
        except subprocess.TimeoutExpired:
            LOG.warning("run %s did not stop within the grace period; killing it", run_id)
            os.killpg(worker.pid, signal.SIGKILL)

    # -- scheduling ---------------------------------------------------------------------------
    def _prune_now_and_then(self) -> None:
        """Delete old finished runs (``retention.prune``) at most every PRUNE_SECONDS."""
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_SECONDS:
            return
        self._pruned_at = now
        try:
            with self.db.session() as session:
                cutoff = utcnow() - dt.timedelta(days=self.settings.run_retention_days)
                gone = retention.prune(session, older_than=cutoff, keep_per_stack=self.settings.runs_kept_per_stack)
            if gone:
                LOG.info("deleted %d finished runs older than %s days", gone, self.settings.run_retention_days)
        except Exception:  # housekeeping must never stop scheduling
            LOG.exception("pruning old runs failed")

    def _schedule(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                self._prune_now_and_then()
                started = self._start_runnable()
                if not started:
                    self._wake.wait(timeout=1.0)

    def _start_runnable(self) -> bool:
        capacity = self.settings.max_parallel_runs - len(self._running)
        if capacity <= 0:
            return False
        with self.db.session() as session:
            queued = session.scalars(select(Run).where(Run.status == "queued").order_by(Run.queued_at, Run.id)).all()
            chosen: list[str] = []
            seen: set[str] = set()
            for run in queued:
                if run.pulumi_stack in seen or run.pulumi_stack in self._busy_stacks:
                    seen.add(run.pulumi_stack)
                    continue
                seen.add(run.pulumi_stack)
                chosen.append(run.id)
                if len(chosen) >= capacity:
                    break
        for run_id in chosen:
            try:
                self._launch(run_id)
            except Exception as exc:  # one run that cannot start must not stop the others
                LOG.exception("run %s could not start", run_id)
                self._refuse_start(run_id, exc)
        return bool(chosen)

    def _refuse_start(self, run_id: str, exc: Exception) -> None:
        """A run that cannot start (its sealed secrets do not open, its worker does not spawn)
        fails with a typed error, and the scheduler goes on with the others."""
        if isinstance(exc, InvalidToken):
            reason = "its secret arguments cannot be unsealed (was the passphrase changed?)"
        elif isinstance(exc, ServiceError):  # e.g. the tenant's AWS role was removed after the run was queued
            reason = str(exc.detail)
        else:
            reason = f"its worker could not start ({type(exc).__name__})"
        with self.db.session() as session:
            if not queue.fail(session, run_id, error_type="RunStartFailed", detail=f"the run could not start: {reason}"):
                return
            run = session.get(Run, run_id)
            assert run is not None
            stack = self._stack(session, run)
            if stack is not None:
                stack.status = _status_after_failure(run)
                _back_to_applied(session, stack, run)
                stack.updated_at = utcnow()

    def _launch(self, run_id: str) -> None:
        with self.db.session() as session:
            # Claimed first (a cancel now finds it running); anything below that fails rolls
            # the claim back with the rest, and the run fails with RunStartFailed.
            if not queue.claim(session, run_id):
                return
            run = session.get(Run, run_id)
            assert run is not None
            stack = self._stack(session, run)
            secrets = self.box.open(run.sealed_secrets)
            job = self._job(session, run, secrets)
            worker = self._take_worker()
            run.worker_pid, run.sealed_secrets = worker.pid, None
            if stack is not None:
                run.params = {**run.params, "stack_status_before": stack.status}
                stack.status = _BUSY.get(run.kind, "busy")
                stack.updated_at = utcnow()
            self._running[run_id] = worker
            self._busy_stacks.add(run.pulumi_stack)
            pulumi_stack = run.pulumi_stack
        assert worker.stdin is not None
        try:
            worker.stdin.write(json.dumps(job))
            worker.stdin.close()
        except OSError:  # the worker died before taking its job: following it reports WorkerFailed
            LOG.warning("run %s: its worker exited before taking the job", run_id)
        threading.Thread(target=self._follow, args=(run_id, pulumi_stack, worker), name=f"run-{run_id[:8]}",
                         daemon=True).start()

    def _spawn_worker(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "service.worker", str(self.toolchain_bin), str(self.settings.run_niceness)],
            cwd=REPO_ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def _take_worker(self) -> subprocess.Popen[str]:
        """A warm spare (started earlier, already past its imports and CLI check), else a new worker."""
        with self._spares_lock:
            while self._spares:
                worker = self._spares.pop()
                if worker.poll() is None:
                    return worker
        return self._spawn_worker()

    def _replenish(self) -> None:
        """Start spares up to one per parallel run, only while no run is in progress: starting
        a worker costs CPU that runs in progress would otherwise have."""
        if not self.settings.warm_worker or self._running or not self.toolchain_ready():
            return
        with self._spares_lock:
            while not self._stopping and len(self._spares) < self.settings.max_parallel_runs:
                self._spares.append(self._spawn_worker())

    def _job(self, session: Any, run: Run, secrets: dict[str, Any]) -> dict[str, Any]:
        identity = identities.for_target(session, run.tenant_id, run.params["target"])
        applied = session.get(AppliedArguments, run.pulumi_stack)
        packs, configs = policy.job_packs(policy.for_tenant(session, run.tenant_id),
                                          self.settings.workspaces_dir / run.pulumi_stack / ".policy")
        env = targets.engine_env(run.params["target"], _base_env(), str(self.toolchain_bin))
        env.update(self.settings.pulumi_secrets_env())
        env.update({"PULUMI_BACKEND_URL": self.settings.backend,
                    "SANDBOX_CLOUD_DIR": str(self.settings.sandbox_cloud_dir),
                    "SANDBOX_LATENCY_MS": str(self.settings.sandbox_latency_ms)})
        if self.settings.sandbox_gate_dir is not None:
            env["SANDBOX_GATE_DIR"] = str(self.settings.sandbox_gate_dir)
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
        }

    # -- following a worker ------------------------------------------------------------------
    def _follow(self, run_id: str, pulumi_stack: str, worker: subprocess.Popen[str]) -> None:
        outcome: dict[str, Any] = {}
        stderr_lines: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        reader = threading.Thread(target=lambda: stderr_lines.extend(worker.stderr or []), daemon=True)
        reader.start()
        seq = 0
        pending: list[RunEvent] = []
        guard = threading.Lock()  # protects `pending`
        flushing = threading.Lock()  # one flush at a time, through its commit: events land in seq order
        reading = threading.Event()

        def flush() -> None:
            with flushing:
                with guard:
                    batch = list(pending)
                    pending.clear()
                if batch:
                    with self.db.session() as session:
                        session.add_all(batch)

        def flush_periodically() -> None:  # readers see each event within ~0.1 s, even in a long gap
            while not reading.wait(EVENT_FLUSH_SECONDS):
                flush()

        ticker = threading.Thread(target=flush_periodically, daemon=True)
        ticker.start()
        try:
            assert worker.stdout is not None
            for line in worker.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if "event" in message:
                    seq += 1
                    with guard:
                        pending.append(RunEvent(run_id=run_id, seq=seq, data=message["event"]))
                        full = len(pending) >= EVENT_BATCH
                    if full:
                        flush()
                else:
                    outcome = message
            reading.set()
            ticker.join(timeout=5)
            flush()
            worker.wait()
            reader.join(timeout=5)
            if stderr_lines:
                level = logging.INFO if "result" in outcome else logging.WARNING
                LOG.log(level, "run %s worker stderr:\n%s", run_id, "".join(stderr_lines)[-20000:])
            self._finish(run_id, outcome, worker.returncode)
        except Exception:
            LOG.exception("following run %s failed", run_id)
            self._finish(run_id, {"error": {"type": "ServiceError", "detail": "the run's worker failed"}}, -1)
        finally:
            reading.set()
            with self._wake:
                self._running.pop(run_id, None)
                self._busy_stacks.discard(pulumi_stack)
                self._wake.notify_all()
            self._replenish()

    def _finish(self, run_id: str, outcome: dict[str, Any], returncode: int) -> None:
        with self.db.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                return
            stack = self._stack(session, run)
            run.finished_at = utcnow()
            if "result" in outcome:
                result = outcome["result"]
                run.status, run.summary = "succeeded", result.get("summary", {})
                if stack is not None:
                    if result.get("removed"):
                        self._cancel_queued(session, run, "the stack was deleted before this run started")
                        shutil.rmtree(self.settings.workspaces_dir / run.pulumi_stack, ignore_errors=True)
                        applied = session.get(AppliedArguments, stack.pulumi_stack)
                        if applied is not None:
                            session.delete(applied)
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
        recovered; a run the service's own stop ended is ``interrupted``."""
        asked = run.id in self._cancels
        self._cancels.discard(run.id)
        killed = returncode < 0
        if asked and killed:
            return "cancelled", {"type": "Cancelled", "detail": "stopped after the cancel grace period"}, True
        if asked and reported is not None and reported["type"] == "Cancelled":
            return "cancelled", reported, False
        if reported is not None and reported["type"] != "Cancelled" and not killed:
            return "failed", reported, False  # the run itself failed, and said why
        if self._stopping:
            return "interrupted", {"type": "Interrupted", "detail": "the service stopped while this run was in "
                                   "progress; the stack is recovered before its next run"}, True
        if run.worker_pid:  # its engine must not outlive it: the recovery would race it for the stack
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(run.worker_pid, signal.SIGKILL)
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
        with the same conditional transition a cancel uses (a scheduler may be claiming one)."""
        for run_id in session.scalars(select(Run.id).where(Run.pulumi_stack == after.pulumi_stack,
                                                           Run.id != after.id, Run.status == "queued")).all():
            queue.drop(session, run_id, error_type="StackDeleted", detail=reason)

    @staticmethod
    def _stack(session: Any, run: Run) -> StackRecord | None:
        return session.scalar(select(StackRecord).where(StackRecord.pulumi_stack == run.pulumi_stack))

    # -- recovery after a crash ----------------------------------------------------------------
    def recover(self) -> list[str]:
        """Mark runs a killed service left running as interrupted and queue their recovery.
        A run whose worker outlived the service is stopped first (see ``_retire_orphan``)."""
        recovered = []
        with self.db.session() as session:
            for run in session.scalars(select(Run).where(Run.status == "running")).all():
                if run.worker_pid and _group(run.worker_pid):
                    self._busy_stacks.add(run.pulumi_stack)  # no run of this stack starts beside it
                    threading.Thread(target=self._retire_orphan, args=(run.pulumi_stack, run.worker_pid),
                                     name=f"orphan-{run.worker_pid}", daemon=True).start()
                run.status, run.finished_at = "interrupted", utcnow()
                run.error_type = "Interrupted"
                run.error_detail = "the service stopped while this run was in progress; the stack was recovered"
                stack = self._stack(session, run)
                if stack is not None and not self.toolchain_ready():
                    stack.status = "interrupted"  # recovered on the first start with a toolchain
                    LOG.error("cannot recover stack %s: the Pulumi toolchain is missing", stack.name)
                elif stack is not None:
                    stack.status = "recovering"
                    _back_to_applied(session, stack, run)
                    if self._queue_recovery(session, run, stack):
                        recovered.append(stack.name)
        return recovered

    def _retire_orphan(self, pulumi_stack: str, group: int) -> None:
        """Stop a run the killed service left behind as a cancel would (the CLI finishes the
        resource operations in flight and saves them, so nothing it created is forgotten),
        kill it after the cancel grace period, and only then let the stack's runs, its
        recovery first, start."""
        try:
            _stop_group(group, self.settings.cancel_grace_seconds)
        finally:
            with self._wake:
                self._busy_stacks.discard(pulumi_stack)
                self._wake.notify_all()


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


def _end_spare(worker: subprocess.Popen[str]) -> None:
    try:
        worker.communicate(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _group(leader: int) -> dict[int, bytes]:
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


def _stop_group(leader: int, grace_seconds: float) -> None:
    """Ask a worker's group to stop cleanly (SIGTERM to the worker, which passes SIGINT to its
    CLI; SIGINT to the CLI directly if the worker is gone), SIGKILL it after ``grace_seconds``,
    and return once none of it is left."""
    members = _group(leader)
    for pid, cmdline in members.items():
        if pid == leader or (leader not in members and cmdline.split(b"\0")[0].endswith(b"pulumi")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if pid == leader else signal.SIGINT)
    if members and not _gone(leader, grace_seconds):
        LOG.warning("a run left by the stopped service did not stop within the grace period; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader, signal.SIGKILL)
        _gone(leader, 30)


def _gone(leader: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group(leader):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "SERVERLESS_CASES_", "SANDBOX_"))}
