"""The state backend: no metadata sidecars on a local file backend, recovery of the ones a crash
broke, and checkpoints written compressed as the settings say."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from programs import backend
from service.settings import Settings
from tests.service_harness import Service, describe, wait_run


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


def _state_files(svc: Service, name: str) -> dict[str, bytes]:
    return {path.name.removeprefix(f"admin.{name}"): path.read_bytes()
            for path in svc.stacks_state_dir.glob(f"admin.{name}.json*")}


ZSTD_MAGIC = bytes.fromhex("28b52ffd")


def test_runs_write_the_stacks_state_compressed_as_set_and_any_format_is_read_and_converted(
        tmp_path: Path, pulumi_toolchain: str) -> None:
    ttl = 60
    for compression, suffix in [("none", ".json"), ("gzip", ".json.gz"), ("zstd", ".json.zst")]:
        svc = Service(tmp_path / "svc", pulumi_toolchain, state_compression=compression).start()
        try:
            with svc.client() as api:
                if compression == "none":
                    run = api.post("/v1/stacks", json={"name": "packed", "case": "todo-app"}).json()
                else:  # the state another setting wrote is read, and rewritten in this one's format
                    ttl += 1
                    run = api.patch("/v1/stacks/packed", json={"arguments": {"cache_ttl_seconds": ttl}}).json()
                assert wait_run(api, run["id"])["status"] == "succeeded", describe(run)
            files = _state_files(svc, "packed")
            assert [s for s in files if not s.endswith(".bak")] == [suffix]  # the old format is gone
            exported = svc.cli("admin.packed", "stack", "export", "--stack", "admin.packed")  # a plain CLI reads it
            assert exported.returncode == 0, exported.stderr
            resources = json.loads(exported.stdout)["deployment"]["resources"]
            assert len(resources) > 10 and any(r["type"] == "aws:dynamodb/table:Table" for r in resources)
            if compression == "none":
                assert json.loads(files[suffix])["checkpoint"]["latest"]["resources"] == resources
            elif compression == "gzip":
                assert json.loads(gzip.decompress(files[suffix]))["checkpoint"]["latest"]["resources"] == resources
            else:
                assert files[suffix].startswith(ZSTD_MAGIC) and len(files[suffix]) * 8 < len(exported.stdout)
        finally:
            svc.stop()


def test_a_postgres_state_backends_table_is_made_once_by_nodes_starting_together(database: str) -> None:
    url = database.replace("postgresql://", "postgres://", 1) + "?sslmode=disable"
    with ThreadPoolExecutor(8) as pool:  # without the node's lock, concurrent creates collide (23505)
        made = list(pool.map(lambda _: backend.prepare_postgres_state(url), range(8)))
    assert made.count(True) == 1
    with psycopg.connect(database) as connection:
        columns = connection.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                                     "WHERE table_name = 'pulumi_state' ORDER BY ordinal_position").fetchall()
        indexes = connection.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'pulumi_state'").fetchall()
    assert columns == [("key", "text", "NO"), ("data", "json", "NO"), ("updated_at", "timestamp with time zone", "NO")]
    assert sorted(i for (i,) in indexes) == ["pulumi_state_key_prefix_idx", "pulumi_state_pkey"]
    assert backend.prepare_postgres_state(url) is False  # there: nothing to do
    assert backend.prepare_postgres_state("file:///srv/state") is False
