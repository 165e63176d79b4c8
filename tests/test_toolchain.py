"""The toolchain script: a suitable pulumi on PATH is used; otherwise the pinned CLI is built
(stamped with its version); with neither, it fails at once saying how to install Pulumi."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from programs.targets import REPO_ROOT

SCRIPT = REPO_ROOT / "toolchain" / "ensure-pulumi.sh"
PINNED = dict(line.split("=", 1) for line in (REPO_ROOT / "toolchain" / "versions.env").read_text().splitlines()
              if "=" in line and not line.startswith("#"))["PULUMI_VERSION"]


def _fake_pulumi(folder: Path, version: str, *, language_host: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "pulumi").write_text(f"#!/bin/sh\necho v{version}\n")
    (folder / "pulumi").chmod(0o755)
    if language_host:
        (folder / "pulumi-language-python").write_text("#!/bin/sh\n")
        (folder / "pulumi-language-python").chmod(0o755)
    return folder


def _run(path: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "SERVERLESS_CASES_CACHE": str(cache)}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_suitable_pulumi_on_path_is_used(tmp_path: Path) -> None:
    folder = _fake_pulumi(tmp_path / "newer", "3.999.0")
    done = _run(f"{folder}:/usr/bin:/bin", tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(folder)


def test_no_pulumi_and_no_go_fails_fast_with_install_advice(tmp_path: Path) -> None:
    folder = _fake_pulumi(tmp_path / "older", "3.100.0")  # too old: ignored
    done = _run(f"{folder}:/usr/bin:/bin", tmp_path / "empty-cache")
    assert done.returncode != 0
    assert "no Go toolchain" in done.stderr and "Install Pulumi" in done.stderr
    assert not (tmp_path / "empty-cache" / f"pulumi-v{PINNED}" / "bin" / "pulumi").exists()


def test_built_cli_reports_the_pinned_version(pulumi_toolchain: str) -> None:
    out = subprocess.run([f"{pulumi_toolchain}/pulumi", "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"v{PINNED}"
    assert Path(pulumi_toolchain, "pulumi-language-python").exists()
    assert Path(pulumi_toolchain, "pulumi-language-python-exec").exists()


def test_plugins_load_the_sdks_grpc_modules_alone_and_a_later_import_gets_the_whole_sdk() -> None:
    """``toolchain.protos.load`` spares a plugin the SDK's package initialisation, and leaves no
    hollow package behind: a later ``import pulumi`` in the same process is the real SDK, sharing
    the generated modules already loaded."""
    script = textwrap.dedent("""
        import sys
        from toolchain.protos import load
        (provider_pb2,) = load("provider_pb2")
        assert provider_pb2.CreateRequest(urn="u").urn == "u"
        assert "pulumi" not in sys.modules and "pulumi.output" not in sys.modules, sorted(sys.modules)
        import pulumi
        from pulumi.runtime.proto import provider_pb2 as again
        assert again is provider_pb2 and pulumi.Output is not None
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
