"""The schema the service had before migrations (tenants, tokens, stacks, runs, their events).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from service.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tenants",
                    sa.Column("id", sa.String(32), primary_key=True),
                    sa.Column("created_at", UTCDateTime(), nullable=False))
    op.create_table("api_tokens",
                    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
                    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), nullable=False),
                    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
                    sa.Column("admin", sa.Boolean(), nullable=False),
                    sa.Column("created_at", UTCDateTime(), nullable=False))
    op.create_index("ix_api_tokens_tenant_id", "api_tokens", ["tenant_id"])
    op.create_table("stacks",
                    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
                    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), nullable=False),
                    sa.Column("name", sa.String(64), nullable=False),
                    sa.Column("pulumi_stack", sa.String(128), nullable=False, unique=True),
                    sa.Column("case", sa.String(64), nullable=False),
                    sa.Column("target", sa.String(16), nullable=False),
                    sa.Column("args", sa.JSON(), nullable=False),
                    sa.Column("secret_arg_names", sa.JSON(), nullable=False),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("outputs", sa.JSON(), nullable=False),
                    sa.Column("resource_count", sa.Integer(), nullable=False),
                    sa.Column("last_run_id", sa.String(36), nullable=True),
                    sa.Column("created_at", UTCDateTime(), nullable=False),
                    sa.Column("updated_at", UTCDateTime(), nullable=False))
    op.create_index("ix_stacks_status", "stacks", ["status"])
    op.create_index("ix_stacks_case", "stacks", ["case"])
    op.create_index("ix_stacks_tenant_id", "stacks", ["tenant_id"])
    op.create_table("runs",
                    sa.Column("id", sa.String(36), primary_key=True),
                    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), nullable=False),
                    sa.Column("stack_name", sa.String(64), nullable=False),
                    sa.Column("pulumi_stack", sa.String(128), nullable=False),
                    sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("params", sa.JSON(), nullable=False),
                    sa.Column("sealed_secrets", sa.Text(), nullable=True),
                    sa.Column("summary", sa.JSON(), nullable=False),
                    sa.Column("error_type", sa.String(64), nullable=True),
                    sa.Column("error_detail", sa.Text(), nullable=True),
                    sa.Column("worker_pid", sa.Integer(), nullable=True),
                    sa.Column("queued_at", UTCDateTime(), nullable=False),
                    sa.Column("started_at", UTCDateTime(), nullable=True),
                    sa.Column("finished_at", UTCDateTime(), nullable=True))
    op.create_index("ix_runs_tenant_id", "runs", ["tenant_id"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_pulumi_stack", "runs", ["pulumi_stack"])
    op.create_table("run_events",
                    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
                    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False),
                    sa.Column("seq", sa.Integer(), nullable=False),
                    sa.Column("data", sa.JSON(), nullable=False))
    op.create_index("ix_run_events_run_id", "run_events", ["run_id"])


def downgrade() -> None:
    for table in ("run_events", "runs", "stacks", "api_tokens", "tenants"):
        op.drop_table(table)
