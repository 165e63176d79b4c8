"""The Python language host used by serverless-cases' toolchain.

The Pulumi engine runs a Python program through a *language host*: a gRPC server that
implements ``pulumirpc.LanguageRuntime`` and starts ``pulumi-language-python-exec`` (the
executor script shipped in the sdk/v3 Go module) with the program, the resource monitor's
address and the stack's configuration. The upstream host is an untagged Go module that
this machine's Go proxy does not serve, so the toolchain installs this one instead.

It implements what ``pulumi preview/up/refresh/destroy`` need from a language host:
``Handshake``, ``GetPluginInfo``, ``GetRequiredPackages``/``GetRequiredPlugins`` (none
declared up front: providers load on demand), ``Run``, ``About``, and ``RunPlugin`` for
policy packs written in Python (``--policy-pack``). The program runs with the virtualenv
named in ``Pulumi.yaml`` (``runtime.options.virtualenv``), a pack with the one named in its
``PulumiPolicy.yaml``; else ``$PULUMI_PYTHON_CMD`` or ``python3``. A pack starts from the
service's preloader of its virtualenv when ``$SERVERLESS_CASES_PRELOAD_DIR`` has one
(``preload.py``, installed beside this file).

Usage (by the engine): ``pulumi-language-python [flags] ENGINE_ADDRESS``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import empty_pb2, json_format

sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine_watchdog and protos are installed beside this file
from engine_watchdog import watch_engine
from preload import stand_in
from protos import load

if TYPE_CHECKING:
    from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2
else:  # without the rest of the SDK (see protos.py)
    language_pb2, language_pb2_grpc, plugin_pb2 = load("language_pb2", "language_pb2_grpc", "plugin_pb2")

VERSION = os.environ.get("SERVERLESS_CASES_PULUMI_VERSION", "3.274.1")
EXEC_NAME = "pulumi-language-python-exec"
# Exit code the executor uses once it has already shown the user an actionable message.
EXIT_AFTER_USER_MESSAGE = 32


def _executor_path() -> str:
    here = Path(sys.argv[0]).resolve().parent
    beside_shim = Path(os.environ.get("SERVERLESS_CASES_LANGHOST_BIN", "")) / EXEC_NAME
    for candidate in (beside_shim, here / "bin" / EXEC_NAME, here / EXEC_NAME):
        if candidate.is_file():
            return str(candidate)
    raise SystemExit(f"pulumi-language-python: cannot find {EXEC_NAME} beside the host")


def _options(info: language_pb2.ProgramInfo) -> dict[str, Any]:
    if not info.HasField("options"):
        return {}
    return json_format.MessageToDict(info.options)


def _python_for(info: language_pb2.ProgramInfo) -> str:
    venv = _options(info).get("virtualenv")
    if venv:
        root = Path(info.root_directory or ".")
        venv_path = Path(venv) if Path(venv).is_absolute() else root / venv
        python = venv_path / "bin" / "python"
        if not python.exists():
            raise FileNotFoundError(
                f"the virtualenv {venv_path} named in Pulumi.yaml does not exist; "
                "run `make setup` (or create it and install the project) first"
            )
        return str(python)
    return os.environ.get("PULUMI_PYTHON_CMD", "python3")


class LanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, engine_address: str, executor: str) -> None:
        self._engine_address = engine_address
        self._executor = executor
        self._children: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    # -- protocol ---------------------------------------------------------------------------
    def Handshake(self, request, context):
        if request.engine_address:
            self._engine_address = request.engine_address
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=VERSION)

    def GetRequiredPlugins(self, request, context):
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request, context):
        return language_pb2.GetRequiredPackagesResponse()

    def About(self, request, context):
        return language_pb2.AboutResponse(executable=sys.executable, version=sys.version.split()[0])

    def Run(self, request, context):
        info = request.info
        try:
            python = _python_for(info)
        except FileNotFoundError as exc:
            return language_pb2.RunResponse(error=str(exc))
        args = [python, "-u", self._executor]
        flags = {
            "monitor": request.monitor_address,
            "engine": self._engine_address,
            "project": request.project,
            "stack": request.stack,
            "pwd": request.pwd,
            "dry_run": "true" if request.dryRun else "false",
            "parallel": str(request.parallel),
            "organization": request.organization,
            "root_directory": info.root_directory,
        }
        for key, value in flags.items():
            if value:
                args += [f"--{key}", value]
        program = info.entry_point or request.program or "."
        if info.program_directory:
            program = os.path.join(info.program_directory, program)
        args.append(program)
        args += list(request.args)

        env = dict(os.environ)
        env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
        # The executor and the program share the engine's stdout/stderr, as upstream does.
        child = subprocess.Popen(args, env=env, cwd=request.pwd or None)
        with self._lock:
            self._children.add(child)
        try:
            code = child.wait()
        finally:
            with self._lock:
                self._children.discard(child)
        if code == 0:
            return language_pb2.RunResponse()
        if code == EXIT_AFTER_USER_MESSAGE:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"Program exited with non-zero exit code: {code}")

    def RunPlugin(self, request, context):
        """Run a plugin written in Python and stream its output. The engine asks for a policy pack
        this way (kind ``analyzer``): ``python -u -m pulumi.policy <engine address> <pack folder>``
        in the pack's folder and virtualenv; pulumi.policy runs the pack's ``__main__.py``, which
        serves the analyzer and prints its port first, as every plugin does."""
        info = request.info
        folder = info.program_directory or info.root_directory or request.pwd
        if request.kind != "analyzer":
            yield from _exited(1, f"pulumi-language-python: plugins of kind {request.kind!r} are not supported "
                                  "(only policy packs)\n")
            return
        try:
            python = _python_for(info)
        except FileNotFoundError as exc:
            yield from _exited(1, f"{exc}\n")
            return
        env = dict(item.split("=", 1) for item in request.env if "=" in item) or dict(os.environ)
        # Forked from the node's preloader of that virtualenv when the service runs one (toolchain/preload.py).
        python = stand_in(os.environ.get("SERVERLESS_CASES_PRELOAD_DIR"), python) or python
        child = subprocess.Popen([python, "-u", "-m", "pulumi.policy", *request.args, folder], env=env, cwd=folder,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self._lock:
            self._children.add(child)
        context.add_callback(lambda: child.poll() is None and child.terminate())  # the engine hung up
        chunks: queue.Queue[tuple[str, bytes]] = queue.Queue()

        def pump(name: str, stream: Any) -> None:
            for chunk in iter(lambda: stream.read1(65536), b""):
                chunks.put((name, chunk))
            chunks.put((name, b""))

        for name, stream in (("stdout", child.stdout), ("stderr", child.stderr)):
            threading.Thread(target=pump, args=(name, stream), daemon=True).start()
        open_streams = 2
        try:
            while open_streams:
                name, chunk = chunks.get()
                if not chunk:
                    open_streams -= 1
                    continue
                yield language_pb2.RunPluginResponse(**{name: chunk})
            code = child.wait()
        finally:
            with self._lock:
                self._children.discard(child)
        yield language_pb2.RunPluginResponse(exitcode=code)

    def Cancel(self, request, context):
        self.terminate_children()
        return empty_pb2.Empty()

    # -- lifecycle --------------------------------------------------------------------------
    def terminate_children(self) -> None:
        with self._lock:
            children = list(self._children)
        for child in children:
            if child.poll() is None:
                child.terminate()


def _exited(code: int, message: str) -> Any:
    yield language_pb2.RunPluginResponse(stderr=message.encode())
    yield language_pb2.RunPluginResponse(exitcode=code)


def main(argv: list[str]) -> int:
    positional = [a for a in argv if not a.startswith("-")]
    engine_address = positional[-1] if positional else ""
    host = LanguageHost(engine_address, _executor_path())
    watch_engine(engine_address, host.terminate_children)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[
            ("grpc.max_receive_message_length", 400 * 1024 * 1024),
            ("grpc.max_send_message_length", 400 * 1024 * 1024),
        ],
    )
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(host, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)

    stop = threading.Event()

    def _stop(*_: object) -> None:
        host.terminate_children()
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stop.wait()
    # Leave promptly: the engine gives a plugin 5 s after its interrupt, then kills it, and
    # waits for it all that time. Interpreter shutdown (thread and gRPC clean-up) has been
    # seen to outlast that under load, and there is nothing left here to clean up.
    server.stop(grace=1).wait(2)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
