"""Every decision ends in a stored outcome: the trade it made, the rule that stopped it,
why nothing was to be done, or that it expired (its keeper died and the next cycle came
after the next bar closed). Signals are settled one by one. Risk trades get an index by
user and time: a keeper restores only a user's newest ones.

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
    op.create_index("ix_risk_trades_user_time", "risk_trades", ["user_id", "timestamp"])


def downgrade() -> None:
    op.drop_index("ix_risk_trades_user_time", table_name="risk_trades")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_column("outcome")
