"""Python plugins forked from an interpreter that has done their imports (a preloader).

Each run starts Python plugins of its own: the language host, the sandbox provider (once per
provider the program declares), the dynamic-resource provider, the policy pack's analyzer.
Started fresh, each spends a few tenths of a second of CPU importing gRPC, protobuf and the
Pulumi SDK, and holds 20-36 MB of its own. Forked from a process that has imported them
already, it starts at once and shares those pages with every other plugin forked from it.

Two halves:

- ``python preload.py serve FOLDER NICENESS STAND_IN MODULE...`` (here; standard library only,
  so it runs in any virtualenv): the preloader of that interpreter's virtualenv. It imports the
  modules, then listens on ``FOLDER/socket`` and writes ``FOLDER/bin/python``, a stand-in for
  the interpreter that the launchers of the plugins are pointed at (``SANDBOX_PYTHON``,
  ``PULUMI_RUNTIME_VIRTUALENV``, ``SERVERLESS_CASES_LANGHOST_PYTHON``, and the language host for
  policy packs: :func:`stand_in`). Each connection asks for one plugin: the preloader forks it
  with the request's stdin, stdout and stderr (passed as descriptors), environment, working
  folder and command (``-m MODULE`` or a script), answers ``pid N``, then ``exit STATUS`` once
  the plugin has ended.
- the stand-in, ``STAND_IN`` (``toolchain/gomod/standin``, a small Go program: 2 MB where a
  Python one would take 10): the engine's child in the plugin's place. It relays SIGINT, SIGTERM
  and SIGHUP to the plugin and exits with the plugin's status; it leaves when the engine does,
  and the plugin leaves when the stand-in does (the engine stops a plugin through its process
  group, with SIGKILL at last, and a forked plugin is in neither). When the preloader does not
  answer, or the command has other interpreter options, the stand-in becomes the real
  interpreter (``exec``): a plugin always starts.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import io
import json
import os
import runpy
import select
import shlex
import signal
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

SOCKET, STAND_IN = "socket", "bin/python"
STAND_IN_BINARY = "preload-stand-in"  # the Go stand-in, in the toolchain's folder (ensure-pulumi.sh)
FOLDER_PREFIX = "sc-preload-"  # the node's folder of preloader folders (service.preloaders makes it)
MAX_REQUEST = 4 * 2**20


def stand_in(folder: str | os.PathLike[str] | None, python: str) -> str | None:
    """The stand-in for ``python`` among the preloaders under ``folder``, if one was written."""
    if not folder:
        return None
    candidate = os.path.join(folder, key(python), STAND_IN)
    return candidate if os.path.isfile(candidate) else None


def key(python: str) -> str:
    """The name of ``python``'s preloader folder: a digest of its path, symlinks kept (two
    virtualenvs link the same interpreter, and each has its own packages)."""
    return hashlib.sha256(os.path.abspath(python).encode()).hexdigest()[:16]


# -- the preloader -------------------------------------------------------------------------------
def serve(folder: Path, niceness: int, stand_in_binary: str, modules: list[str]) -> int:
    # Plugins are part of runs: background work, as their workers are. The preloader leads a
    # session, which Linux with autogroup scheduling weighs as one group against the API's, and
    # its plugins stay in it: the group's nice value is raised too (a plugin leading a session
    # of its own would be a group at full weight beside the API).
    os.nice(niceness)
    if os.getsid(0) == os.getpid():  # never the group of a session it was merely started in (a shell's)
        with contextlib.suppress(OSError):  # no autogroup scheduling here: the nice value suffices
            Path("/proc/self/autogroup").write_text(str(niceness))
    parent = os.getppid()
    for module in modules:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()  # the loaded objects stay out of the collector's reach: their pages stay shared
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = folder / f".{SOCKET}.{os.getpid()}"
    listener.bind(str(temporary))
    listener.listen(64)
    os.replace(temporary, folder / SOCKET)  # clients connect only once everything is loaded
    _write_stand_in(folder, stand_in_binary)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    parent_fd = _pidfd(parent)
    waiting: dict[int, socket.socket] = {}  # plugin pid -> its stand-in's connection
    while not stopping.is_set():
        watched = [listener.fileno(), wake_read] + ([parent_fd] if parent_fd is not None else [])
        ready, _, _ = select.select(watched, [], [])
        if wake_read in ready:
            os.read(wake_read, 512)
        _report_ended(waiting)
        if parent_fd in ready:  # the service is gone: its plugins go on until their stand-ins end
            _remove(folder)
            return 0
        if listener.fileno() in ready:
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            _fork(connection, listener, (wake_read, wake_write), waiting)
    with contextlib.suppress(OSError):
        os.unlink(folder / SOCKET)
    return 0


def _remove(folder: Path) -> None:
    """Remove what this preloader wrote, its folder, and the node's folder once it is empty: a
    service that died (killed, or crashed) cannot remove them itself, and a node that restarts
    makes a folder of its own."""
    for written in (folder / SOCKET, folder / STAND_IN):
        with contextlib.suppress(OSError):
            written.unlink()
    for empty in (folder / STAND_IN).parent, folder:
        with contextlib.suppress(OSError):
            empty.rmdir()
    if folder.parent.name.startswith(FOLDER_PREFIX):  # the last preloader out removes it
        with contextlib.suppress(OSError):
            folder.parent.rmdir()


def _write_stand_in(folder: Path, binary: str) -> None:
    script = folder / STAND_IN
    script.parent.mkdir(parents=True, exist_ok=True)
    temporary = script.with_suffix(".tmp")
    arguments = " ".join(shlex.quote(part) for part in (binary, str(folder / SOCKET), sys.executable))
    temporary.write_text(f"#!/bin/sh\nexec {arguments} \"$@\"\n")
    temporary.chmod(0o755)
    os.replace(temporary, script)


def _fork(connection: socket.socket, listener: socket.socket, wake: tuple[int, int],
          waiting: dict[int, socket.socket]) -> None:
    try:
        connection.settimeout(10)
        uid, client_pid = _peer(connection)
        if uid != os.getuid():
            raise PermissionError("another user's process")
        request, fds = _receive(connection)
    except (OSError, ValueError):
        connection.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _become_plugin(request, fds, client_pid, [listener, connection], wake)
    for fd in fds:
        os.close(fd)
    try:
        connection.sendall(b"pid %d\n" % pid)
        waiting[pid] = connection
    except OSError:
        connection.close()


def _peer(connection: socket.socket) -> tuple[int, int]:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", credentials)
    return uid, pid


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    """A request: its length, the stand-in's stdin, stdout and stderr, then its JSON."""
    header, fds, _, _ = socket.recv_fds(connection, 8, 3)
    try:
        if len(header) != 8 or len(fds) != 3:
            raise ValueError("a request starts with its length and three descriptors")
        (length,) = struct.unpack("!Q", header)
        if length > MAX_REQUEST:
            raise ValueError("request too long")
        body = b""
        while len(body) < length:
            chunk = connection.recv(length - len(body))
            if not chunk:
                raise ValueError("request cut short")
            body += chunk
        return json.loads(body), fds
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise


def _report_ended(waiting: dict[int, socket.socket]) -> None:
    """Reap every ended plugin and tell its stand-in how it ended."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = waiting.pop(pid, None)
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.sendall(b"exit %d\n" % os.waitstatus_to_exitcode(status))
            connection.close()


def _become_plugin(request: dict, fds: list[int], client_pid: int, sockets: list[socket.socket],
                   wake: tuple[int, int]) -> None:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in wake:
            os.close(fd)
        for sock in sockets:
            sock.close()
        os.setpgid(0, 0)  # out of the preloader's process group, in its (niced) session
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = io.TextIOWrapper(open(0, "rb", closefd=False))  # noqa: SIM115
        sys.stdout = io.TextIOWrapper(open(1, "wb", buffering=0, closefd=False), write_through=True)  # noqa: SIM115
        sys.stderr = io.TextIOWrapper(open(2, "wb", buffering=0, closefd=False), write_through=True,  # noqa: SIM115
                                      errors="backslashreplace")
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        script = request.get("path")
        # As the interpreter would: a script's folder first, or for `-m` the working folder.
        sys.path[0] = os.path.dirname(script) if script else request["cwd"]
        _leave_with(client_pid)
        if script:
            sys.argv = [script, *request["args"]]
            runpy.run_path(script, run_name="__main__")
        else:
            sys.argv = ["-m", *request["args"]]
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException:  # a plugin's crash is reported as Python would report it
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _leave_with(pid: int) -> None:
    """Exit this process once process ``pid`` has exited."""
    pidfd = _pidfd(pid)
    if pidfd is None:  # no pidfds (Linux < 5.3): the plugin's own engine watch remains
        return

    def wait() -> None:
        select.select([pidfd], [], [])  # readable once the process has exited
        os._exit(1)

    _start_deaf(wait, "stand-in-watch")


def _start_deaf(target: Callable[[], None], name: str) -> None:
    """Start a daemon thread that blocks every signal. A signal sent to the process (the engine's
    SIGINT, asking a plugin to stop) is then taken by the main thread, where Python runs its
    handlers: taken by another thread, it would wait until the main thread next ran Python code,
    which a plugin asleep in a system call may not do for minutes."""
    kept = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())  # the thread inherits it
    try:
        threading.Thread(target=target, name=name, daemon=True).start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, kept)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"] or len(sys.argv) < 5:
        raise SystemExit("usage: preload.py serve FOLDER NICENESS STAND_IN MODULE...")
    sys.exit(serve(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]))
