"""Tenants' AWS identities and policy settings; each stack's last applied arguments.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from service.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tenant_aws_identities",
                    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), primary_key=True),
                    sa.Column("role_arn", sa.String(2048), nullable=False),
                    sa.Column("external_id", sa.String(1224), nullable=True),
                    sa.Column("updated_at", UTCDateTime(), nullable=False))
    op.create_table("tenant_policies",
                    sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), primary_key=True),
                    sa.Column("config", sa.JSON(), nullable=False),
                    sa.Column("packs", sa.JSON(), nullable=False),
                    sa.Column("updated_at", UTCDateTime(), nullable=False))
    op.create_table("applied_arguments",
                    sa.Column("pulumi_stack", sa.String(128), primary_key=True),
                    sa.Column("args", sa.JSON(), nullable=False),
                    sa.Column("secret_arg_names", sa.JSON(), nullable=False),
                    sa.Column("run_id", sa.String(36), nullable=False),
                    sa.Column("applied_at", UTCDateTime(), nullable=False))


def downgrade() -> None:
    for table in ("applied_arguments", "tenant_policies", "tenant_aws_identities"):
        op.drop_table(table)
