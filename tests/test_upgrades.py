"""A data folder made by an earlier version is upgraded in place on the first start of this one:
its stacks, runs and tokens intact, the new tables there (the schema is Alembic migrations)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from sqlalchemy import select

from service.auth import authenticate
from service.db import AppliedArguments, Database, Run, StackRecord, TenantPolicies
from tests.engine import REPO

MADE_BY_3ABDD98 = REPO / "tests" / "data" / "service-3abdd98.db"  # the database of the version before migrations


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_database_made_before_migrations_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "service.db"
    shutil.copy(MADE_BY_3ABDD98, path)
    assert "alembic_version" not in _tables(path)
    db = Database(f"sqlite:///{path}")
    assert {"alembic_version", "tenant_aws_identities", "tenant_policies", "applied_arguments", "nodes",
            "stack_settings", "change_counts"} <= _tables(path)
    principal = authenticate(db, "sc_globex-token-made-by-3abdd98-00000000000")
    assert principal is not None and principal.tenant == "globex" and not principal.admin
    assert authenticate(db, "sc_admin-token-made-by-3abdd98-000000000000").admin  # type: ignore[union-attr]
    with db.session() as session:
        stack = session.scalar(select(StackRecord).where(StackRecord.name == "files"))
        assert stack is not None and stack.args == {"cache_ttl_seconds": 120} and stack.resource_count == 57
        assert [r.kind for r in session.scalars(select(Run).order_by(Run.finished_at))] == ["up", "update"]
        # Runs keep their order in the stack's sequence, and the stack's next run comes after them.
        assert [(r.kind, r.seq) for r in session.scalars(select(Run).order_by(Run.seq))] == [("up", 1), ("update", 2)]
        assert stack.run_seq == 2
        session.add(TenantPolicies(tenant_id="globex", config={}, packs=[]))  # the new tables work
        session.add(AppliedArguments(pulumi_stack="globex.files", args={}, secret_arg_names=[], run_id="r"))
    db.dispose()
    Database(f"sqlite:///{path}").dispose()  # a second start finds it current


def test_a_new_database_is_made_by_the_migrations(tmp_path: Path) -> None:
    path = tmp_path / "service.db"
    Database(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as db:
        (version,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == "0003"
    assert _tables(path) >= {"tenants", "api_tokens", "stacks", "runs", "run_events", "applied_arguments"}


def test_the_migrations_make_exactly_the_schema_the_models_describe(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from service.db import Base

    db = Database(f"sqlite:///{tmp_path / 'service.db'}")
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    db.dispose()
    assert differences == []
