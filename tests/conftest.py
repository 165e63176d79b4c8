from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine import Workspace, toolchain_bin


@pytest.fixture(scope="session")
def pulumi_toolchain() -> str:
    return toolchain_bin()


@pytest.fixture
def workspace(tmp_path: Path, pulumi_toolchain: str) -> Iterator[Workspace]:
    yield Workspace(tmp_path, pulumi_toolchain)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests start first, so that on two workers none of them is the last to finish
    while the other worker idles."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
