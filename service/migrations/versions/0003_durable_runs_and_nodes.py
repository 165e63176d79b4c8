"""Runs executed by the durable engine on any node of a fleet: each run's place in its stack's
order, the engine workflow that took it, the node running it, its attempts and a cancel any node
can see; node leases; stack settings every node can read; change counters for cross-node reads.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from service.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (with constant defaults) on every database: SQLite then keeps the tables
    # in place, where a copy-and-move would trip over the events' foreign key to runs.
    op.add_column("stacks", sa.Column("run_seq", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("runs", sa.Column("seq", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("runs", sa.Column("ticket", sa.String(64), nullable=True))
    op.add_column("runs", sa.Column("node_id", sa.String(128), nullable=True))
    op.add_column("runs", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("runs", sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("runs", sa.Column("recovered", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_runs_ticket", "runs", ["ticket"])
    op.create_index("ix_stacks_tenant_name", "stacks", ["tenant_id", "name"])  # pages of a tenant's list
    op.create_table("stack_settings",
                    sa.Column("pulumi_stack", sa.String(128), primary_key=True),
                    sa.Column("text", sa.Text(), nullable=False),
                    sa.Column("updated_at", UTCDateTime(), nullable=False))
    op.create_table("nodes",
                    sa.Column("id", sa.String(128), primary_key=True),
                    sa.Column("roles", sa.String(32), nullable=False),
                    sa.Column("started_at", UTCDateTime(), nullable=False),
                    sa.Column("lease_expires_at", UTCDateTime(), nullable=False))
    op.create_table("change_counts",
                    sa.Column("name", sa.String(32), primary_key=True),
                    sa.Column("count", sa.BigInteger(), nullable=False))
    op.bulk_insert(sa.table("change_counts", sa.column("name", sa.String), sa.column("count", sa.BigInteger)),
                   [{"name": name, "count": 0} for name in ("tenants", "api_tokens", "stacks", "runs")])
    # Runs queued by an older version keep their order: their stack's sequence starts after them.
    op.execute("UPDATE runs SET seq = (SELECT COUNT(*) FROM runs AS earlier WHERE earlier.pulumi_stack = "
               "runs.pulumi_stack AND (earlier.queued_at < runs.queued_at OR (earlier.queued_at = runs.queued_at "
               "AND earlier.id <= runs.id)))")
    op.execute("UPDATE stacks SET run_seq = (SELECT COUNT(*) FROM runs WHERE runs.pulumi_stack = stacks.pulumi_stack)")


def downgrade() -> None:
    for table in ("change_counts", "nodes", "stack_settings"):
        op.drop_table(table)
    op.drop_index("ix_stacks_tenant_name", "stacks")
    op.drop_index("ix_runs_ticket", "runs")
    for column in ("recovered", "cancel_requested", "attempts", "node_id", "ticket", "seq"):
        op.drop_column("runs", column)
    op.drop_column("stacks", "run_seq")
