"""Cycle claims for workers sharing one store: a (user, slot) row is written by the one
worker that runs that user's cycle of that scheduling slot, so a task delivered twice
(a redelivery, a second scheduler) runs once. Lease keys grow to hold a keeper
account's lease (``account:0x...``) beside the users' leases.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import keepers.persistence.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cycle_claims",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("keeper_id", sa.String(length=120), nullable=False),
        sa.Column("claimed_at", keepers.persistence.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "slot"),
    )
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.String(length=40), type_=sa.String(length=80))


def downgrade() -> None:
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.String(length=80), type_=sa.String(length=40))
    op.drop_table("cycle_claims")
