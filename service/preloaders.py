"""The node's plugin preloaders (:mod:`toolchain.preload`): one per virtualenv a run's Python
plugins start from, started with the worker fork server and stopped with it.

A run's plugins go through a preloader only when the run's environment says so
(:meth:`Preloaders.env`): ``SANDBOX_PYTHON``, ``PULUMI_RUNTIME_VIRTUALENV`` (the dynamic-resource
provider) and ``SERVERLESS_CASES_LANGHOST_PYTHON`` name a loaded preloader's stand-in
interpreter, and ``SERVERLESS_CASES_PRELOAD_DIR`` lets the language host find the policy
pack's. Until a preloader has loaded (or once it is gone) plugins start as fresh interpreters,
as they do under ``pulumi up`` outside the service.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from programs import targets
from programs.targets import REPO_ROOT
from toolchain import preload

LOG = logging.getLogger("serverless_cases.workers")

PRELOAD_DIR_ENV = "SERVERLESS_CASES_PRELOAD_DIR"


@dataclass(frozen=True)
class Virtualenv:
    python: Path
    modules: tuple[str, ...]
    preloader: Path = Path(preload.__file__)  # its folder is on the preloader's path


def virtualenvs(toolchain_bin: Path) -> tuple[Virtualenv, Virtualenv, Virtualenv]:
    """The project's virtualenv (sandbox provider, dynamic resources), the policy pack's, and the
    language host's (in the toolchain, with its own copy of preload.py beside language_host.py)."""
    project = Path(targets.runtime_env()["PULUMI_RUNTIME_VIRTUALENV"]) / "bin" / "python"
    host = toolchain_bin.parent
    return (
        # A dynamic resource's provider is unpickled by reference: components.generated (and the
        # package's own imports, pulumi_aws among them) is imported in the plugin.
        Virtualenv(project, ("pulumi", "pulumi.dynamic", "pulumi.runtime._serialization", "dill",
                             "sandbox.provider", "components.generated",
                             "cryptography.hazmat.primitives.asymmetric.rsa",
                             "cryptography.hazmat.primitives.serialization",
                             "encodings.idna")),  # the sandbox provider's engine watchdog resolves its address
        Virtualenv(REPO_ROOT / "policies" / ".venv" / "bin" / "python",
                   ("pulumi", "pulumi.runtime", "pulumi.policy", "pulumi_policy")),
        Virtualenv(host / "langhost-venv" / "bin" / "python", ("grpc", "language_host"), host / "preload.py"),
    )


class Preloaders:
    def __init__(self, niceness: int, toolchain_bin: Path) -> None:
        self.niceness = niceness
        self.venvs = virtualenvs(toolchain_bin)
        self.stand_in = toolchain_bin.parent / preload.STAND_IN_BINARY  # built by toolchain/ensure-pulumi.sh
        self.folder: Path | None = None  # made as the first preloader starts
        self._processes: dict[Path, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        """Start each preloader not running (a preloader that is gone is replaced)."""
        if not self.stand_in.exists():  # a toolchain not built by ensure-pulumi.sh: plugins start fresh
            return
        if self.folder is None:
            # Short (a Unix socket's path is limited to 107 bytes) and private (mkdtemp: mode 0700).
            # Removed by close(), or, if this process dies, by the preloaders as they leave.
            self.folder = Path(tempfile.mkdtemp(prefix=preload.FOLDER_PREFIX,
                                                dir="/tmp" if Path("/tmp").is_dir() else None))  # noqa: S108
        for venv in self.venvs:
            running = self._processes.get(venv.python)
            if (running is not None and running.poll() is None) or not venv.python.exists() \
                    or not venv.preloader.exists():
                continue
            folder = self.folder / preload.key(str(venv.python))
            folder.mkdir(exist_ok=True)
            self._processes[venv.python] = subprocess.Popen(
                [str(venv.python), str(venv.preloader), "serve", str(folder), str(self.niceness),
                 str(self.stand_in), *venv.modules],
                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)

    def env(self) -> dict[str, str]:
        """What a run's environment needs for its plugins to start from the loaded preloaders."""
        if self.folder is None:
            return {}
        project, _pack, host = (preload.stand_in(self.folder, str(venv.python)) for venv in self.venvs)
        env = {PRELOAD_DIR_ENV: str(self.folder)}  # the language host finds the pack's there
        if project is not None:
            env["SANDBOX_PYTHON"] = project
            env["PULUMI_RUNTIME_VIRTUALENV"] = str(Path(project).parent.parent)
        if host is not None:
            env["SERVERLESS_CASES_LANGHOST_PYTHON"] = host
        return env

    def close(self, timeout: float = 10.0) -> None:
        """Stop the preloaders (plugins they forked go on until their engines stop them)."""
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in self._processes.values():
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
