from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests start first, so that on two workers none of them is the last to finish
    while the other worker idles."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
