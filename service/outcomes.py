"""What a run's end (or a start that never happened) does to its records: the run's status and
typed error, its stack's status, outputs and arguments, and whether the stack needs a recovery.

Each function works on rows of one open session and commits nothing itself: the caller's
transaction makes a run's ending and its stack's new state one change.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from service import queue, workers
from service.db import AppliedArguments, Run, StackRecord, StackSettings, utcnow

MUTATING = ("up", "update", "destroy")  # the runs that change the stack's resources
MUTATING_CONFIG = ("up", "update")  # the runs that apply the stack's arguments
MAX_RECOVERIES = 3
BUSY = {"up": "creating", "update": "updating", "destroy": "destroying", "refresh": "refreshing",
        "preview": "previewing", "recover": "recovering"}


def busy(kind: str) -> str:
    """The stack's status while a run of ``kind`` is in progress."""
    return BUSY.get(kind, "busy")


def stack_of(session: Any, run: Run) -> StackRecord | None:
    return session.scalar(select(StackRecord).where(StackRecord.pulumi_stack == run.pulumi_stack))


def succeeded(session: Any, run: Run, stack: StackRecord | None, result: dict[str, Any], workspaces_dir: Path) -> None:
    """A run that succeeded: its summary, and its stack's outputs, resource count and applied
    arguments; a destroy that removed the stack removes its records and workspace and cancels
    the runs still queued behind it."""
    run.status, run.summary = "succeeded", result.get("summary", {})
    run.finished_at, run.sealed_secrets = utcnow(), None
    if stack is None:
        return
    if result.get("removed"):
        cancel_queued(session, run, "the stack was deleted before this run started")
        shutil.rmtree(workspaces_dir / run.pulumi_stack, ignore_errors=True)
        for kept in (session.get(AppliedArguments, stack.pulumi_stack), session.get(StackSettings, stack.pulumi_stack)):
            if kept is not None:
                session.delete(kept)
        session.delete(stack)
        return
    if run.kind in MUTATING_CONFIG:
        record_applied(session, run)
    stack.outputs = {k: "[secret]" if v.get("secret") else v.get("value") for k, v in result.get("outputs", {}).items()}
    if result.get("resource_count") is not None:  # a preview changes nothing
        stack.resource_count = result["resource_count"]
    stack.status = "ready"
    stack.updated_at = utcnow()


def did_not_succeed(session: Any, run: Run, stack: StackRecord | None, status: str, error: dict[str, Any]) -> None:
    """A run that ended otherwise (failed, cancelled, interrupted): its typed error, and its
    stack's status and desired arguments as they were before it."""
    run.status, run.error_type, run.error_detail = status, error["type"], error["detail"]
    run.summary = error.get("summary") or {}
    run.finished_at, run.sealed_secrets = utcnow(), None
    stack_after_failure(session, run, stack)


def stack_after_failure(session: Any, run: Run, stack: StackRecord | None) -> None:
    """The stack of a run that did not succeed: its status and desired arguments as they were
    before the run (see ``status_after_failure`` and ``back_to_applied``)."""
    if stack is not None:
        stack.status = status_after_failure(run)
        back_to_applied(session, stack, run)
        stack.updated_at = utcnow()


def ending(run: Run, reported: dict[str, Any] | None, returncode: int) -> tuple[str, dict[str, Any], bool]:
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


def may_recover(session: Any, run: Run, stack: StackRecord) -> bool:
    """Whether ``run``'s stack may be recovered again: not once its last MAX_RECOVERIES recoveries
    all failed. The stack then stops as ``unrecoverable`` and the run says why, instead of
    recovering forever (a person must look: refresh, change or delete it)."""
    if recoveries_failed_in_a_row(session, stack.pulumi_stack) < MAX_RECOVERIES:
        return True
    stack.status = "unrecoverable"
    run.error_type = "RecoveryFailed"
    run.error_detail = (f"{run.error_detail} ({MAX_RECOVERIES} recoveries of the stack failed in a row: it is "
                        "left unrecoverable; refresh, change or delete it)")
    return False


def give_up(session: Any, run: Run, stack: StackRecord | None) -> None:
    """A run whose node died too often while it ran is not carried on again."""
    did_not_succeed(session, run, stack, "failed", {
        "type": "RecoveryFailed",
        "detail": f"the run's node died {run.attempts - 1} times while it ran; it is not carried on again "
                  "and its stack is left unrecoverable: refresh, change or delete it"})
    if stack is not None:
        stack.status = "unrecoverable"


def cancel_queued(session: Any, after: Run, reason: str) -> None:
    """Cancel the runs of ``after``'s stack still queued (behind a destroy that removed it), each
    with the same conditional transition a cancel uses (a ticket may be claiming one)."""
    for run_id in session.scalars(select(Run.id).where(Run.pulumi_stack == after.pulumi_stack,
                                                       Run.id != after.id, Run.status == "queued")).all():
        queue.drop(session, run_id, error_type="StackDeleted", detail=reason)


def keep_stack_settings(session: Any, pulumi_stack: str, text: str) -> None:
    kept = session.get(StackSettings, pulumi_stack)
    if kept is None:
        session.add(StackSettings(pulumi_stack=pulumi_stack, text=text, updated_at=utcnow()))
    elif kept.text != text:
        kept.text, kept.updated_at = text, utcnow()


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


def record_applied(session: Any, run: Run) -> None:
    applied = session.get(AppliedArguments, run.pulumi_stack)
    if applied is None:
        applied = AppliedArguments(pulumi_stack=run.pulumi_stack)
        session.add(applied)
    applied.args = dict(run.params.get("args", {}))
    applied.secret_arg_names = list(run.params.get("secret_arg_names", []))
    applied.run_id, applied.applied_at = run.id, utcnow()


def back_to_applied(session: Any, stack: StackRecord, run: Run) -> None:
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


def status_after_failure(run: Run) -> str:
    """A failed or cancelled change leaves the stack failed/cancelled; a failed preview or
    refresh leaves it as it was."""
    if run.kind in MUTATING or run.kind == "recover":
        return "cancelled" if run.status == "cancelled" else "failed"
    before = run.params.get("stack_status_before", "ready")
    return str(before) if before not in BUSY.values() else "ready"
