"""A run's Python plugins are forked from the node's preloaders (toolchain/preload.py): each gets
its launcher's input, output, environment, folder and arguments, reports its exit status as its
own, stops with its stand-in, and starts as a fresh interpreter when no preloader answers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from programs.targets import REPO_ROOT
from service import workers
from tests.service_harness import Service, alive, until, wait_run
from toolchain import preload

PROBE = textwrap.dedent("""
    import json, os, sys, time
    try:
        print(json.dumps({"preloaded": "decimal" in sys.modules, "parent": os.getppid(), "pid": os.getpid(),
                          "argv": sys.argv[1:], "cwd": os.getcwd(), "mark": os.environ.get("PROBE_MARK"),
                          "input": sys.stdin.readline().strip()}), flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        if sys.argv[1:2] == ["sleep"]:
            time.sleep(120)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(7)
    sys.exit(int(sys.argv[1]) if sys.argv[1:] and sys.argv[1].isdigit() else 0)
""")


def _serve(folder: Path, toolchain: str) -> subprocess.Popen[bytes]:
    """A preloader of this interpreter that has imported ``decimal``, with the toolchain's stand-in."""
    stand_in = str(Path(toolchain).parent / "preload-stand-in")
    return subprocess.Popen([sys.executable, preload.__file__, "serve", str(folder), "0", stand_in, "decimal"],
                            start_new_session=True)


@pytest.fixture
def preloader(tmp_path: Path, pulumi_toolchain: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A running preloader and its stand-in."""
    folder = tmp_path / "p" / preload.key(sys.executable)
    folder.mkdir(parents=True)
    process = _serve(folder, pulumi_toolchain)
    try:
        assert until(lambda: (folder / preload.STAND_IN).exists() and (folder / preload.SOCKET).exists(), 30)
        stand_in = preload.stand_in(tmp_path / "p", sys.executable)
        assert stand_in is not None
        yield process, Path(stand_in)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _probe(tmp_path: Path) -> Path:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    return script


def _run(stand_in: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(stand_in), *args], input="hello\n", capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PROBE_MARK": "marked"}, timeout=60)


def test_a_preloaded_plugin_runs_with_its_launchers_input_output_environment_folder_and_exit_status(
        preloader: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    process, stand_in = preloader
    work = tmp_path / "work"
    work.mkdir()
    done = _run(stand_in, "-u", str(_probe(tmp_path)), "3", "x y", cwd=work)
    seen = json.loads(done.stdout.splitlines()[0])
    assert seen["preloaded"] and seen["parent"] == process.pid, "the plugin was not forked from the preloader"
    assert seen["argv"] == ["3", "x y"] and seen["cwd"] == str(work) and seen["mark"] == "marked"
    assert seen["input"] == "hello" and done.stderr == "to stderr\n"
    assert done.returncode == 3
    # `-m` runs a module, as the interpreter would, from the working folder first on the path.
    (work / "probemod.py").write_text(PROBE)
    by_module = _run(stand_in, "-m", "probemod", "0", cwd=work)
    assert by_module.returncode == 0 and json.loads(by_module.stdout.splitlines()[0])["preloaded"]


def test_without_its_preloader_a_stand_in_runs_the_real_interpreter(tmp_path: Path, pulumi_toolchain: str) -> None:
    folder = tmp_path / "p" / preload.key(sys.executable)
    folder.mkdir(parents=True)
    process = _serve(folder, pulumi_toolchain)
    assert until(lambda: (folder / preload.STAND_IN).exists(), 30)
    process.terminate()
    process.wait(timeout=10)
    assert not (folder / preload.SOCKET).exists()
    done = _run(folder / preload.STAND_IN, str(_probe(tmp_path)), "4", cwd=tmp_path)
    seen = json.loads(done.stdout.splitlines()[0])
    assert not seen["preloaded"] and seen["parent"] == os.getpid(), "the stand-in did not become the interpreter"
    assert done.returncode == 4 and seen["input"] == "hello" and seen["mark"] == "marked"
    # Interpreter options the preloader does not take run the real interpreter too.
    assert subprocess.run([str(folder / preload.STAND_IN), "-c", "print(6 * 7)"], capture_output=True,
                          text=True, timeout=60).stdout == "42\n"


def test_a_malformed_request_is_refused_and_the_preloader_keeps_serving_with_no_descriptor_left_open(
        preloader: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    process, stand_in = preloader
    path = str(stand_in.parent.parent / preload.SOCKET)
    opened = len(os.listdir(f"/proc/{process.pid}/fd"))
    bad_requests = [
        (b"\0" * 8, [0, 1, 2], b"not json"),                    # three descriptors, then no JSON
        (struct.pack("!Q", preload.MAX_REQUEST + 1), [0, 1, 2], b""),  # too long
        (struct.pack("!Q", 100), [0, 1, 2], b"{}"),               # cut short
        (struct.pack("!Q", 2), [], b"{}"),                        # no descriptors
    ]
    for header, fds, body in bad_requests:
        assert _refused(path, header, fds, body), "a malformed request was answered"
    done = _run(stand_in, str(_probe(tmp_path)), "0", cwd=tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout.splitlines()[0])["preloaded"]
    assert until(lambda: len(os.listdir(f"/proc/{process.pid}/fd")) == opened, 10), "a descriptor was left open"


def _refused(path: str, header: bytes, fds: list[int], body: bytes) -> bool:
    """Whether the preloader hangs up on this request without answering."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(path)
        try:
            socket.send_fds(client, [header], fds)
            client.sendall(body)
            client.shutdown(socket.SHUT_WR)
            return client.recv(100) == b""
        except (BrokenPipeError, ConnectionResetError):  # hung up with the request unread
            return True


def _started(stand_in: Path, tmp_path: Path, **popen: object) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen([str(stand_in), str(_probe(tmp_path)), "sleep"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, **popen)  # type: ignore[call-overload]
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    return child, json.loads(child.stdout.readline())["pid"]


def _blocked_signals(pid: int, tid: int) -> int:
    """The signal mask of one thread of a process (bit n-1 for signal n)."""
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)


def test_only_the_plugins_main_thread_takes_signals(preloader: tuple[subprocess.Popen[bytes], Path],
                                                    tmp_path: Path) -> None:
    """The preloader's watch of the stand-in is a thread of the plugin: a SIGINT the kernel gave
    that thread would wait until the main thread next ran Python code (a plugin asleep in a
    system call would not stop), so every thread but the main one blocks signals."""
    _, stand_in = preloader
    child, plugin = _started(stand_in, tmp_path)
    with child:
        helpers = [int(t) for t in os.listdir(f"/proc/{plugin}/task") if int(t) != plugin]
        assert helpers, "the plugin has its stand-in watch thread"
        sigint, sigterm = 1 << (signal.SIGINT - 1), 1 << (signal.SIGTERM - 1)
        assert all(_blocked_signals(plugin, tid) & sigint and _blocked_signals(plugin, tid) & sigterm
                   for tid in helpers)
        assert not _blocked_signals(plugin, plugin) & sigint, "the main thread takes the interrupt"
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=30) == 7


def test_an_interrupt_reaches_the_plugin_and_its_exit_status_comes_back(
        preloader: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    _, stand_in = preloader
    child, plugin = _started(stand_in, tmp_path)
    with child:
        child.send_signal(signal.SIGINT)  # the engine's first request to a plugin to stop
        assert child.wait(timeout=30) == 7
        assert child.stdout is not None and child.stdout.read() == "interrupted\n"
    assert until(lambda: not alive(plugin), 10)


def test_a_plugin_leaves_when_its_stand_in_is_killed(preloader: tuple[subprocess.Popen[bytes], Path],
                                                     tmp_path: Path) -> None:
    _, stand_in = preloader
    child, plugin = _started(stand_in, tmp_path)
    with child:
        child.kill()  # the engine's last word to a plugin's process group, where the plugin is not
        child.wait(timeout=10)
    assert until(lambda: not alive(plugin), 10), "the plugin outlived its stand-in"


def _engine_with_a_plugin(stand_in: Path, tmp_path: Path, *argv: str,
                          **popen: Any) -> tuple[subprocess.Popen[str], int, int]:
    """A process that starts a plugin through ``stand_in``, as an engine does: (the process, the
    stand-in's pid, the plugin's pid)."""
    engine = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([{str(stand_in)!r}, {str(_probe(tmp_path))!r}, "sleep"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        child.stdin.write("go\\n"); child.stdin.flush()
        print(child.pid, child.stdout.readline(), flush=True)
        time.sleep(120)
    """), *argv], stdout=subprocess.PIPE, text=True, **popen)
    assert engine.stdout is not None
    line = engine.stdout.readline().split(" ", 1)
    return engine, int(line[0]), json.loads(line[1])["pid"]


def test_a_stand_in_and_its_plugin_leave_when_the_engine_that_started_it_is_killed(
        preloader: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    _, stand_in = preloader
    engine, stand_in_pid, plugin = _engine_with_a_plugin(stand_in, tmp_path)
    with engine:
        engine.kill()
        engine.wait(timeout=10)
    assert until(lambda: not alive(stand_in_pid), 10), "the stand-in outlived its engine"
    assert until(lambda: not alive(plugin), 10), "the plugin outlived its engine"


def test_killing_a_run_kills_the_plugins_forked_for_it_at_once(
        preloader: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    # A forked plugin is the preloader's child: it leaves once it notices its stand-in's end, and
    # until then it could complete a call of the killed engine. Stopped here, it never would.
    _, stand_in = preloader
    worker, stand_in_pid, plugin = _engine_with_a_plugin(  # a run's worker, as kill_run knows one
        stand_in, tmp_path, "service.worker", start_new_session=True)
    try:
        assert plugin not in workers.descendants({worker.pid})
        os.kill(plugin, signal.SIGSTOP)  # it has not noticed anything yet
        workers.kill_run(worker.pid)
        assert until(lambda: not alive(plugin), 10), "the plugin outlived the run's kill"
        # SIGKILL is sent to both, but each dies in its own time: the stand-in may end after.
        assert until(lambda: not alive(stand_in_pid), 10), "the stand-in outlived the run's kill"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(plugin, signal.SIGKILL)
        with worker:
            worker.kill()


def _forked_plugins(service: Service) -> dict[int, tuple[int, int]]:
    """Each process forked by one of the service's preloaders -> its nice value and its scheduling
    group's (Linux's autogroup: the session's)."""
    found: dict[int, tuple[int, int]] = {}
    for pid in workers.descendants({service.process.pid}) if service.process else ():
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            if "serve" in argv and any(a.endswith("preload.py") for a in argv):
                parent_argv = Path(f"/proc/{parent}/cmdline").read_bytes().decode().split("\0")
                if "serve" in parent_argv:  # forked by a preloader, not the preloader itself
                    nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
                    group = int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
                    found[pid] = (nice, group)
    return found


def _stand_ins(service: Service) -> set[str]:
    """What each stand-in of the service's engines runs (interpreter options, module or script)."""
    out = set()
    for pid in workers.descendants({service.process.pid}) if service.process else ():
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            if argv[0].endswith("preload-stand-in"):  # preload-stand-in SOCKET PYTHON ARGS...
                command = [a.rsplit("/", 1)[-1] for a in argv[2:] if a and "127.0.0.1" not in a]
                out.add(" ".join(command[:4] if command[1:3] == ["-u", "-m"] else command[:3]))
    return out


RUN_NICENESS = 5
EXPECTED = {"python -m sandbox", "python -u -m pulumi.dynamic", "python -u -m pulumi.policy", "python language_host.py"}


def _plain_plugins(service: Service) -> set[str]:
    """Which of the four plugins run as interpreters the engine started itself (not forked)."""
    found = set()
    for pid in workers.descendants({service.process.pid}) if service.process else ():
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            if argv[0].endswith("python") and "serve" not in argv:
                for kind in ("sandbox", "pulumi.dynamic", "pulumi.policy", "language_host.py"):
                    if any(a == kind or a.endswith("/" + kind) for a in argv[1:4]):
                        found.add(kind)
    return found


@pytest.mark.parametrize("preloaded", [True, False])
def test_a_runs_python_plugins_are_forked_from_the_nodes_preloaders(tmp_path: Path, pulumi_toolchain: str,
                                                                    preloaded: bool) -> None:
    service = Service(tmp_path / "svc", pulumi_toolchain, preload_plugins=str(preloaded).lower(),
                      run_niceness=RUN_NICENESS).start()
    try:
        service.gate.close(allow=1)
        with service.client() as api:
            run = api.post("/v1/stacks", json={"name": "forked", "case": "software-updates"}).json()
            service.gate.wait_held(stack="admin.forked")
            # The language host, the sandbox provider, the dynamic-resource provider (the stack's
            # generated secrets) and the policy pack's analyzer: each started by a stand-in, or
            # without preloaders each an interpreter of its own.
            if preloaded:
                started = until(lambda: _stand_ins(service) >= EXPECTED, 60)
            else:
                started = until(lambda: len(_plain_plugins(service)) == len(EXPECTED), 60)
            stand_ins, forked, plain = _stand_ins(service), _forked_plugins(service), _plain_plugins(service)
            service.gate.open()
            assert wait_run(api, run["id"])["status"] == "succeeded"
        assert started, (stand_ins, plain)
        if preloaded:
            assert stand_ins == EXPECTED and plain == set(), (stand_ins, plain)
            assert len(forked) >= len(EXPECTED), "a stand-in's plugin was not forked from a preloader"
            # Background work like the rest of the run: niced, and in a scheduling group niced too
            # (a group at full weight would take the API's CPU, whatever its processes' nice values).
            assert set(forked.values()) == {(RUN_NICENESS, RUN_NICENESS)}, forked
        else:
            assert stand_ins == set() and forked == {}
    finally:
        service.stop()


def test_the_preload_folder_of_a_node_that_died_is_removed_by_its_preloaders(pulumi_toolchain: str) -> None:
    # A node's preloaders, started as the node starts them, in a process killed as a node can be.
    node = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from service.preloaders import Preloaders
        preloaders = Preloaders(0, Path({pulumi_toolchain!r}))
        preloaders.start()
        print(preloaders.folder, flush=True)
        while len(preloaders.env()) < 4:  # every stand-in written: each preloader has loaded
            time.sleep(0.1)
        print("loaded", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    with node:
        assert node.stdout is not None
        folder = Path(node.stdout.readline().strip())
        try:
            assert node.stdout.readline().strip() == "loaded"
            assert folder.name.startswith(preload.FOLDER_PREFIX)
            assert len([p for p in folder.iterdir() if (p / preload.STAND_IN).exists()]) == 3
        finally:
            node.kill()
    assert until(lambda: not folder.exists(), 30), sorted(str(p) for p in folder.rglob("*"))
