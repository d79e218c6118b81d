"""Protective exits (issue 27): a trade row of an exit names its trigger and the bounty
its caller took; ``exit_marks`` keeps each user's protection of a token as the keeper
follows it (its start, and the trailing stop's high-water round since).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import keepers.persistence.tables

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exit_trigger", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("bounty", keepers.persistence.tables.BigInt(length=80), nullable=True))
    op.create_table(
        "exit_marks",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("started_at", keepers.persistence.tables.BigInt(length=80), nullable=True),
        sa.Column("high_round_id", keepers.persistence.tables.BigInt(length=80), nullable=True),
        sa.Column("high_price", keepers.persistence.tables.BigInt(length=80), nullable=True),
        sa.Column("updated_at", keepers.persistence.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "asset"),
    )


def downgrade() -> None:
    op.drop_table("exit_marks")
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.drop_column("bounty")
        batch_op.drop_column("exit_trigger")
