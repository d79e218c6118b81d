"""Operators' control actions (kill, resume, exit now from the status page or API):
who asked, from which address, when, and what came of it. An exit is a request the
user's next cycle turns into a SELL through the journal; the row then holds the trade.

Revision ID: 0006_control_actions
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import keepers.persistence.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "control_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=True),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("requested_at", keepers.persistence.tables.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=300), nullable=True),
        sa.Column("trade_id", sa.String(length=66), nullable=True),
        sa.Column("done_at", keepers.persistence.tables.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_control_actions_user_status", "control_actions", ["user_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_control_actions_user_status", table_name="control_actions")
    op.drop_table("control_actions")
