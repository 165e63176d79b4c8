"""One run, in its own process: ``python -m service.worker [TOOLCHAIN_BIN]`` reads a job (JSON) on stdin,
runs it through :mod:`service.engine`, and writes JSON lines on stdout: ``{"event": ...}``
for each engine event, then one ``{"result": ...}`` or ``{"error": ...}``.

The case program runs inline, in this process (:mod:`service.engine`); a worker forked from
the fork server (:mod:`service.forkserver`) has every import done before the job arrives.
Secret values given in the job never leave this process: every protocol line, and everything
written to stdout or stderr, is scrubbed of them.
SIGTERM asks for a clean stop: it is passed to the Pulumi CLI as SIGINT, which finishes
the resource operations in flight, saves the state and exits; this process then reports
the run as cancelled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from programs import program
from service import forkserver
from service.engine import Cli, Job, JobError, command, run_job, stack_settings

_cancel_requested = False


class Scrubber:
    """Replaces every known secret value (4 characters or more) with ``[secret]``, in the
    spellings it takes in output: as it is, and quoted the way JSON, Go's %q and Python's repr
    quote it (a message can quote a value it echoes)."""

    def __init__(self, secrets: list[str]) -> None:
        self.values: list[str] = []
        self.learn(secrets)

    def learn(self, secrets: list[str]) -> None:
        spellings = {variant for s in secrets if len(s) >= 4
                     for variant in (s, json.dumps(s)[1:-1], json.dumps(s, ensure_ascii=False)[1:-1], repr(s)[1:-1])}
        self.values = sorted({*self.values, *spellings}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, "[secret]")
        return text

    def values_in(self, value: Any) -> Any:
        """``value`` with every string in it (keys too) scrubbed, before it is serialised: in JSON
        text a secret with quotes, backslashes or non-ASCII characters is escaped (and would be
        missed), and one that looks like a number or ``null`` would be replaced in the syntax."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self.values_in(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.values_in(v) for v in value]
        return value


def protocol_line(kind: str, payload: Any, scrub: Scrubber) -> str:
    """One line of the worker's protocol to the service: JSON of scrubbed values."""
    return json.dumps({kind: scrub.values_in(payload)}) + "\n"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _interrupt_cli(already: set[int]) -> None:
    for child in _children(os.getpid()):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if cmdline.endswith(b"pulumi") and child not in already:
            already.add(child)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGINT)


_cancelling = threading.RLock()  # the main thread's handler may run inside a call of the signals thread's


def _forward_cancel(signum: int, frame: Any) -> None:
    """SIGINT to the Pulumi CLI at work, and to any the run starts afterwards (a cancel can
    arrive between two CLI calls, or before the first)."""
    global _cancel_requested
    with _cancelling:
        if _cancel_requested:
            return
        _cancel_requested = True
    interrupted: set[int] = set()
    _interrupt_cli(interrupted)

    def keep_interrupting() -> None:
        while True:
            time.sleep(0.1)
            _interrupt_cli(interrupted)

    threading.Thread(target=keep_interrupting, name="cancel", daemon=True).start()


def _take_cancels_on_any_thread() -> None:
    """Forward a cancel whichever thread takes its signal. The kernel gives a signal sent to the
    process to any thread that does not block it, and Python runs the handler only when the main
    thread next runs Python code; the main thread waits on the CLI's output, which is quiet while
    AWS works (minutes for a distribution). CPython's C handler writes each signal's number to the
    wakeup fd at once, on the thread that took it: a thread of ours reads it and forwards the cancel.
    (The handlers stay set, so a signal is never the default action.)"""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def watch() -> None:
        while taken := os.read(read_end, 64):
            if signal.SIGTERM in taken or signal.SIGINT in taken:
                _forward_cancel(signal.SIGTERM, None)

    threading.Thread(target=watch, name="signals", daemon=True).start()


# Runs are background work: by default they yield the CPU to the API process.
DEFAULT_RUN_NICENESS = 19


def yield_cpu(niceness: int) -> None:
    """Lower this run's CPU priority (the Pulumi CLI, language host and plugins it starts inherit
    it). The service starts a worker leading its own session, which Linux with autogroup
    scheduling weighs as one group against the API's: a process's nice value only ranks it inside
    its group, so the group's nice value is raised as well. A worker started from a shell (not
    leading its session) leaves the shell's group alone: raising it would nice everything the
    shell runs afterwards, the service included."""
    os.nice(niceness)
    if os.getsid(0) == os.getpid():  # never the group of a session it was merely started in (a shell's)
        with contextlib.suppress(OSError):  # no autogroup scheduling here: the nice value suffices
            Path("/proc/self/autogroup").write_text(str(niceness))


class ScrubbingFormatter(logging.Formatter):
    """Log lines (raw engine output included) go to the service log without secrets."""

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__("%(levelname)s:%(name)s:%(message)s")
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))


class ScrubbedOutput:
    """The protocol keeps the real stdout to itself. This process's own output (the inline
    program's prints, library warnings, log lines) goes through the scrubber to the real
    stderr, the service log."""

    def __init__(self, scrub: Scrubber) -> None:
        self.scrub = scrub
        self.protocol = os.fdopen(os.dup(1), "w")
        self._log = os.fdopen(os.dup(2), "w", errors="replace")
        read_end, write_end = os.pipe()
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        self._pump = threading.Thread(target=self._copy, args=(read_end,), name="scrubbed-output", daemon=True)
        self._pump.start()

    def _copy(self, read_end: int) -> None:
        with os.fdopen(read_end, errors="replace") as lines:
            for line in lines:
                with contextlib.suppress(OSError, ValueError):  # no service log any more: keep draining
                    self._log.write(self.scrub(line))
                    self._log.flush()

    def close(self) -> None:
        """Pass on what is left, then give stdout and stderr back."""
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._log.fileno(), 1)  # the pipe's last writers go: its reader ends
        os.dup2(self._log.fileno(), 2)
        self._pump.join(timeout=5)


def main() -> int:
    """``python -m service.worker TOOLCHAIN_BIN NICENESS run``: one run, imports as its case needs.
    ``... forkserver FD``: load everything a run of any case needs, then fork a worker for each
    request on the socket ``FD`` (:mod:`service.forkserver`)."""
    niceness = int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_RUN_NICENESS
    yield_cpu(niceness)
    # Everything that needs no job happens ahead of it in the fork server: the CLI version
    # check, every case's imports. A worker started for a run has its job waiting: it imports
    # only what its case uses.
    pulumi = command(sys.argv[1]) if len(sys.argv) > 1 else None
    if sys.argv[3:4] == ["forkserver"]:
        program.preload()
        channel = socket.socket(fileno=int(sys.argv[4]))
        return forkserver.serve(channel, lambda: _forked_worker(pulumi, niceness))
    return _worker(pulumi)


def _forked_worker(pulumi: Cli | None, niceness: int) -> int:
    with contextlib.suppress(OSError):  # a session of its own is a scheduling group of its own
        Path("/proc/self/autogroup").write_text(str(niceness))
    return _worker(pulumi)


def _worker(pulumi: Cli | None) -> int:
    output = ScrubbedOutput(Scrubber([]))
    try:
        return _serve(output, pulumi)
    finally:
        output.close()


def _serve(output: ScrubbedOutput, pulumi: Cli | None) -> int:
    scrub = output.scrub
    text = sys.stdin.read()
    if not text.strip():
        return 0  # never given a run: the service stopped (or died) first
    job = Job(**json.loads(text))
    os.environ.clear()  # the inline program sees what the engine and its plugins see
    os.environ.update(job.env)
    scrub.learn([str(v) for v in job.secret_args.values()] + [
        v for k, v in job.env.items() if k in ("PULUMI_CONFIG_PASSPHRASE",)])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter(scrub))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])

    def write(kind: str, payload: Any) -> None:
        output.protocol.write(protocol_line(kind, payload, scrub))
        output.protocol.flush()

    def end(kind: str, payload: Any) -> None:
        # The stack's settings file goes back as it is: it holds the secrets provider's ciphertext,
        # never a secret value (scrubbing could only corrupt it).
        line = json.loads(protocol_line(kind, payload, scrub))
        line["stack_settings"] = stack_settings(job)
        output.protocol.write(json.dumps(line) + "\n")
        output.protocol.flush()

    signal.signal(signal.SIGTERM, _forward_cancel)
    signal.signal(signal.SIGINT, _forward_cancel)
    _take_cancels_on_any_thread()
    threading.Thread(target=_stop_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    try:
        result = run_job(job, lambda event: write("event", event), on_secrets=scrub.learn, pulumi=pulumi)
    except JobError as exc:
        kind = "Cancelled" if _cancel_requested else exc.type
        end("error", {"type": kind, "detail": exc.detail, "summary": exc.summary})
        return 1
    end("result", result)
    return 0


def _stop_with_parent(parent: int) -> None:
    """A worker whose node died stops its run as a cancel would (the CLI saves what it did): the
    run is carried on by an execution that recovers the stack, and must not race this one."""
    while os.getppid() == parent:
        time.sleep(0.5)
    _forward_cancel(signal.SIGTERM, None)


if __name__ == "__main__":
    # A worker is done once its output is out. The service reads it until the process exits, and
    # the interpreter's teardown (the engine's modules, threads and exit handlers) added about a
    # second to every run (measured: result line to run finished). Nothing is left to flush.
    exit_code = main()
    logging.shutdown()
    os._exit(exit_code)
