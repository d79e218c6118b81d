"""Every decision ends in a stored outcome: the trade it made, the rule that stopped it,
why nothing was to be done, or that it expired (its keeper died and the next cycle came
after the next bar closed). Signals are settled one by one.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Signals settled before this revision keep no outcome (NULL): their trades and risk
    # events are the record.
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_column("outcome")
