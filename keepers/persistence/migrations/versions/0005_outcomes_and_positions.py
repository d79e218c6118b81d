"""Every decision ends in a stored outcome: the trade it made, the rule that stopped it,
why nothing was to be done, or that it expired (its keeper died and the next cycle came
after the next bar closed). Signals are settled one by one. Risk trades get an index by
user and time (a keeper restores only a user's newest ones), trades one by user and
status (a cycle reads only a user's unfinished rows). Positions keep each sleeve
as its trades are mined, so a cycle reads a few rows whatever the history; a store
upgraded from an older revision has its positions built from its mined trades by the
next keeper start (keepers.engine.startup), which knows the tokens' decimals.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import keepers.persistence.tables

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
    op.create_index("ix_trades_user_status", "trades", ["user_id", "status"])
    op.create_table(
        "positions",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("strategy", sa.String(length=40), nullable=False),
        sa.Column("tokens", keepers.persistence.tables.BigInt(length=80), nullable=False),
        sa.Column("cost_quote", sa.Float(), nullable=False),
        sa.Column("realised_quote", sa.Float(), nullable=False),
        sa.Column("updated_at", keepers.persistence.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "asset", "strategy"),
    )


def downgrade() -> None:
    op.drop_table("positions")
    op.drop_index("ix_trades_user_status", table_name="trades")
    op.drop_index("ix_risk_trades_user_time", table_name="risk_trades")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_column("outcome")
