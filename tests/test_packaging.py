"""Lambda packaging: handler archives and third-party layers built for the Lambda platform."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from components.cases.blog import PILLOW
from components.cases.todo_app import DAX_CLIENT, DAX_CLIENT_DEPENDENCIES
from components.packaging import dependency_layer_zip, handler_archive


def test_handler_archive_holds_just_the_handler_module() -> None:
    archive = handler_archive("todo_api")
    assert list(archive.assets) == ["todo_api.py"]
    with pytest.raises(FileNotFoundError):
        handler_archive("no_such_handler")


def test_layers_require_pinned_versions() -> None:
    with pytest.raises(ValueError, match="pinned"):
        dependency_layer_zip(["pillow"])


def test_pillow_layer_is_built_for_the_lambda_platform() -> None:
    names = zipfile.ZipFile(dependency_layer_zip([PILLOW])).namelist()
    extensions = [n for n in names if n.startswith("python/PIL/_imaging.") and n.endswith(".so")]
    assert extensions and all("cpython-312-x86_64-linux-gnu" in n for n in extensions)


def test_layer_build_is_cached_and_reproducible() -> None:
    first = dependency_layer_zip([PILLOW])
    assert dependency_layer_zip([PILLOW]) == first
    infos = zipfile.ZipFile(first).infolist()
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_dax_client_layer_imports_with_the_lambda_runtime_libraries(tmp_path: Path) -> None:
    zipfile.ZipFile(dependency_layer_zip(DAX_CLIENT_DEPENDENCIES, [DAX_CLIENT])).extractall(tmp_path)
    probe = "import amazondax; print(amazondax.AmazonDaxClient.__name__)"
    done = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path / 'python')!r}); {probe}"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "AmazonDaxClient"
