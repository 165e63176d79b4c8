"""The local file state backend: no metadata sidecars, and recovery of the ones a crash broke."""

from __future__ import annotations

import json
from pathlib import Path

from programs import backend
from service.settings import Settings


def test_project_file_backends_write_no_metadata_sidecars(tmp_path: Path) -> None:
    assert backend.file_url(tmp_path) == f"file://{tmp_path}?metadata=skip"
    assert Settings(data_dir=tmp_path).backend == f"file://{tmp_path / 'state'}?metadata=skip"
    assert Settings(data_dir=tmp_path, backend_url="file:///srv/state").backend == "file:///srv/state?metadata=skip"
    assert Settings(data_dir=tmp_path, backend_url="file:///srv/state?no_tmp_dir=false").backend == \
        "file:///srv/state?no_tmp_dir=false&metadata=skip"


def test_an_explicit_metadata_choice_and_remote_backends_are_left_alone(tmp_path: Path) -> None:
    assert backend.without_sidecars("file:///srv/state?metadata=") == "file:///srv/state?metadata="
    assert backend.without_sidecars("s3://bucket/prefix?region=eu-west-1") == "s3://bucket/prefix?region=eu-west-1"
    assert backend.folder("s3://bucket/prefix") is None
    assert backend.folder("file:///srv/state?metadata=skip") == Path("/srv/state")
    assert backend.repair_sidecars("s3://bucket/prefix") == []


def test_repair_removes_only_broken_sidecars(tmp_path: Path) -> None:
    stacks = tmp_path / ".pulumi" / "stacks" / "project"
    stacks.mkdir(parents=True)
    intact = stacks / "dev.json.attrs"
    intact.write_text(json.dumps({"user.cache_control": "", "content.type": "application/json"}))
    empty = stacks / "prod.json.attrs"
    empty.write_bytes(b"")
    torn = stacks / "test.json.attrs"
    torn.write_text('{"user.cache_con')
    state = stacks / "prod.json"
    state.write_text("{}")

    removed = backend.repair_sidecars(backend.file_url(tmp_path))

    assert sorted(removed) == sorted([empty, torn])
    assert intact.exists() and state.exists() and not empty.exists() and not torn.exists()
    assert backend.repair_sidecars(backend.file_url(tmp_path)) == []
