"""Lambda code packaging: handler modules are plain files under ``components/handlers``.

Archives are built from the files on disk when the program runs (never at import time);
the engine hashes them, so an unchanged handler never causes an update. Third-party
dependencies are built as a layer of binary wheels for the Lambda platform, cached.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components import defaults
from components.naming import physical_name

HANDLERS_DIR = Path(__file__).resolve().parent / "handlers"


def handler_path(module: str) -> Path:
    path = HANDLERS_DIR / f"{module}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no handler module {module!r} in {HANDLERS_DIR}")
    return path


def handler_archive(module: str) -> pulumi.AssetArchive:
    """The deployment package of one handler module (``<module>.handler`` is the entry point)."""
    return pulumi.AssetArchive({f"{module}.py": pulumi.FileAsset(str(handler_path(module)))})


# -- third-party dependencies, built for the Lambda platform ----------------------------------------
LAMBDA_PLATFORM = "manylinux2014_x86_64"
# The Python 3.12 runtime (Amazon Linux 2023, glibc 2.34) also runs manylinux_2_28 wheels.
LAMBDA_PLATFORMS = (LAMBDA_PLATFORM, "manylinux_2_28_x86_64")
LAMBDA_PYTHON = "3.12"


def layer_cache_dir() -> Path:
    root = os.environ.get("SERVERLESS_CASES_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
        / "serverless-cases"
    return Path(root) / "lambda-layers"


def dependency_layer_zip(requirements: Sequence[str], source_only: Sequence[str] = ()) -> Path:
    """A Lambda layer zip (``python/`` at its root) of wheels for the Lambda platform, built
    once per set of pinned requirements and cached (a lock keeps concurrent runs from
    building it twice). ``source_only`` names pure-Python packages published only as source:
    they are built here without their dependencies, which ``requirements`` must list."""
    pins = [*requirements, *source_only]
    if not pins or any("==" not in r for r in pins):
        raise ValueError(f"layer requirements must be pinned with '==': {pins}")
    key = hashlib.sha256("\n".join([*LAMBDA_PLATFORMS, LAMBDA_PYTHON, *sorted(requirements), "--",
                                    *sorted(source_only)]).encode()).hexdigest()[:16]
    cache = layer_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{key}.zip"
    with open(cache / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        with tempfile.TemporaryDirectory(dir=cache) as work:
            site = Path(work) / "python"
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                 "--target", str(site), *[f"--platform={p}" for p in LAMBDA_PLATFORMS], "--implementation", "cp",
                 "--python-version", LAMBDA_PYTHON, "--only-binary=:all:", *requirements],
                check=True, stdout=subprocess.DEVNULL)
            if source_only:
                subprocess.run(
                    [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                     "--no-deps", "--target", str(site), *source_only],
                    check=True, stdout=subprocess.DEVNULL)
            partial = Path(work) / "layer.zip"
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(site.rglob("*")):
                    if path.is_file():
                        info = zipfile.ZipInfo(str(path.relative_to(work)), date_time=(1980, 1, 1, 0, 0, 0))
                        info.external_attr = 0o644 << 16
                        archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
            os.replace(partial, target)
    return target


def lambda_layer(name: str, requirements: Sequence[str], *, source_only: Sequence[str] = (),
                 parent: pulumi.Resource) -> aws.lambda_.LayerVersion:
    """A Lambda layer of pinned third-party dependencies (see :func:`dependency_layer_zip`)."""
    return aws.lambda_.LayerVersion(
        name, layer_name=physical_name(name, max_length=64, lowercase=False), compatible_runtimes=[defaults.LAMBDA_RUNTIME],
        compatible_architectures=[defaults.LAMBDA_ARCHITECTURE],
        code=pulumi.FileArchive(str(dependency_layer_zip(requirements, source_only))),
        opts=pulumi.ResourceOptions(parent=parent))
