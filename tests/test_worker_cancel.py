"""A run's worker stops its run on a cancel whichever of its threads the signal lands on."""

from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine import REPO, Workspace
from tests.service_harness import Gate

pytestmark = pytest.mark.engine

SYS_TGKILL = {"x86_64": 234, "aarch64": 131}[platform.machine()]  # the syscall's number on Linux


def _blocked(pid: int, tid: int) -> int:
    """The thread's mask of blocked signals."""
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)


def _signal_thread(pid: int, tid: int, signum: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_TGKILL, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


def test_a_cancel_taken_by_a_helper_thread_stops_a_run_waiting_on_aws(workspace: Workspace, tmp_path: Path) -> None:
    """The kernel gives a signal sent to a process to any of its threads that does not block it,
    and Python runs the handler only when its main thread next runs Python code. A worker's main
    thread waits on the CLI's output, and a run waiting on AWS (here, on operations the sandbox's
    gate holds) prints nothing: a cancel taken by another thread must still reach the CLI, whose
    cancellation then ends the held operations."""
    gate = Gate(tmp_path / "gate")
    gate.close(allow=4)
    job = {"run_id": "cancel-check", "kind": "up", "pulumi_stack": "held", "case": "software-updates",
           "target": "sandbox", "workspace_dir": str(workspace.root / "held"),
           "env": workspace.env(SANDBOX_GATE_DIR=str(gate.folder)), "toolchain_bin": workspace.toolchain,
           "parallel": 8, "args": {}}
    (tmp_path / "job.json").write_text(json.dumps(job))
    with (tmp_path / "job.json").open() as given, (tmp_path / "out").open("w") as out_file, \
            (tmp_path / "err").open("w") as err_file:
        worker = subprocess.Popen([sys.executable, "-m", "service.worker", workspace.toolchain, "0"], cwd=REPO,
                                  stdin=given, stdout=out_file, stderr=err_file, start_new_session=True)
    try:
        gate.wait_held(stack="held")
        time.sleep(1)  # the CLI's last lines are out: its output is quiet until an operation ends
        helpers = [int(t) for t in os.listdir(f"/proc/{worker.pid}/task") if int(t) != worker.pid
                   and not _blocked(worker.pid, int(t)) & (1 << (signal.SIGTERM - 1))]
        assert helpers, "the worker has no helper thread that takes SIGTERM"
        _signal_thread(worker.pid, helpers[0], signal.SIGTERM)
        worker.wait(timeout=120)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        gate.open()
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    last = json.loads(out.splitlines()[-1])
    assert worker.returncode == 1 and last["error"]["type"] == "Cancelled", err[-3000:]
