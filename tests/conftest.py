from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from programs.targets import REPO_ROOT
from tests.engine import Workspace, toolchain_bin
from tests.service_harness import Service


@pytest.fixture(scope="session")
def pulumi_toolchain() -> str:
    return toolchain_bin()


@pytest.fixture
def workspace(tmp_path: Path, pulumi_toolchain: str) -> Iterator[Workspace]:
    yield Workspace(tmp_path, pulumi_toolchain)


@pytest.fixture
def service(tmp_path: Path, pulumi_toolchain: str) -> Iterator[Service]:
    """The real service, on its defaults, in a data folder of its own (files may define their own)."""
    svc = Service(tmp_path / "svc", pulumi_toolchain).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def postgres() -> str:
    """The server's libpq URL (``postgresql://user@host:port/postgres``)."""
    url = os.environ.get("SERVERLESS_CASES_TEST_POSTGRES")
    if url:
        return url
    done = subprocess.run([str(REPO_ROOT / "toolchain" / "ensure-postgres.sh")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"no PostgreSQL for the many-nodes tests: {done.stderr[-2000:]}"
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def database(postgres: str) -> Iterator[str]:
    """A fresh database of its own: its libpq URL."""
    name = f"fleet_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests start first, so that on two workers none of them is the last to finish
    while the other worker idles."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
