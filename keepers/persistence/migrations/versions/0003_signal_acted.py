"""Signals say whether the keeper acted on them: a keeper that dies between recording a
decision and acting on it leaves the signal un-acted, and the next cycle acts on it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Signals stored before this revision were acted on when they were recorded.
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acted", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_column("acted")
