"""Risk state (trades as the rules see them, locks, clears, blocks, peaks) and operations (cycles, heartbeats, leases).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import keepers.persistence.tables

revision = "0002"
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_trades',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('timestamp', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.Column('asset', sa.String(length=16), nullable=False),
    sa.Column('pnl_quote', sa.Float(), nullable=True),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('trade_id', sa.String(length=66), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('trade_id')
    )
    with op.batch_alter_table('risk_trades', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_trades_user_id'), ['user_id'], unique=False)

    op.create_table('risk_locks',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('asset', sa.String(length=16), nullable=False),
    sa.Column('until', keepers.persistence.tables.UTCDateTime(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'rule', 'asset')
    )

    op.create_table('risk_clears',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('cleared_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'rule')
    )

    op.create_table('risk_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('asset', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('time', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('risk_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_events_user_id'), ['user_id'], unique=False)

    op.create_table('risk_peaks',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('peak_value_quote', sa.Float(), nullable=False),
    sa.Column('updated_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )

    op.create_table('cycles',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('keeper_id', sa.String(length=120), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('started_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.Column('block_time', keepers.persistence.tables.UTCDateTime(), nullable=True),
    sa.Column('duration_seconds', sa.Float(), nullable=False),
    sa.Column('rpc_calls', sa.Integer(), nullable=False),
    sa.Column('signals', sa.Integer(), nullable=False),
    sa.Column('trades_ok', sa.Integer(), nullable=False),
    sa.Column('trades_failed', sa.Integer(), nullable=False),
    sa.Column('blocks', sa.Integer(), nullable=False),
    sa.Column('memory_mb', sa.Float(), nullable=False),
    sa.Column('vault_value_quote', sa.Float(), nullable=True),
    sa.Column('position_value_quote', sa.Float(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cycles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cycles_user_id'), ['user_id'], unique=False)

    op.create_table('heartbeats',
    sa.Column('keeper_id', sa.String(length=120), nullable=False),
    sa.Column('last_seen', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.Column('started_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('keeper_id')
    )

    op.create_table('leases',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=False),
    sa.Column('expires_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.Column('acquired_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )


def downgrade() -> None:
    op.drop_table('leases')
    op.drop_table('heartbeats')
    with op.batch_alter_table('cycles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cycles_user_id'))
    op.drop_table('cycles')
    op.drop_table('risk_peaks')
    with op.batch_alter_table('risk_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_events_user_id'))
    op.drop_table('risk_events')
    op.drop_table('risk_clears')
    op.drop_table('risk_locks')
    with op.batch_alter_table('risk_trades', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_trades_user_id'))
    op.drop_table('risk_trades')
