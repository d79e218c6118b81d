"""The trade journal: trades through their write-ahead states, signals, price bars.

Revision ID: 0001
Revises: 
"""

import sqlalchemy as sa
from alembic import op

import keepers.persistence.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trades',
    sa.Column('trade_id', sa.String(length=66), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('user_address', sa.String(length=42), nullable=False),
    sa.Column('keeper_id', sa.String(length=120), nullable=False),
    sa.Column('chain_id', sa.Integer(), nullable=False),
    sa.Column('asset', sa.String(length=16), nullable=False),
    sa.Column('strategy', sa.String(length=40), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('bar_time', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.Column('token_in', sa.String(length=42), nullable=False),
    sa.Column('token_out', sa.String(length=42), nullable=False),
    sa.Column('amount_in', keepers.persistence.tables.BigInt(length=80), nullable=False),
    sa.Column('min_amount_out', keepers.persistence.tables.BigInt(length=80), nullable=True),
    sa.Column('oracle_floor', keepers.persistence.tables.BigInt(length=80), nullable=True),
    sa.Column('pool_amount_out', keepers.persistence.tables.BigInt(length=80), nullable=True),
    sa.Column('amount_out', keepers.persistence.tables.BigInt(length=80), nullable=True),
    sa.Column('price_in', keepers.persistence.tables.BigInt(length=80), nullable=True),
    sa.Column('price_out', keepers.persistence.tables.BigInt(length=80), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.Column('replaced_tx_hashes', sa.JSON(), nullable=False),
    sa.Column('nonce', sa.Integer(), nullable=True),
    sa.Column('block_number', sa.Integer(), nullable=True),
    sa.Column('gas_used', sa.Integer(), nullable=True),
    sa.Column('gas_price', keepers.persistence.tables.BigInt(length=80), nullable=True),
    sa.Column('revert_reason', sa.String(length=500), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('created_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.Column('updated_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('trade_id')
    )
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trades_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_trades_user_id'), ['user_id'], unique=False)

    op.create_table('signals',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('asset', sa.String(length=16), nullable=False),
    sa.Column('strategy', sa.String(length=40), nullable=False),
    sa.Column('bar_time', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.Column('action', sa.String(length=4), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('indicators', sa.JSON(), nullable=False),
    sa.Column('created_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'asset', 'strategy', 'bar_time')
    )

    op.create_table('price_bars',
    sa.Column('asset', sa.String(length=16), nullable=False),
    sa.Column('timeframe_seconds', sa.Integer(), nullable=False),
    sa.Column('bar_time', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.Column('open', sa.Float(), nullable=False),
    sa.Column('high', sa.Float(), nullable=False),
    sa.Column('low', sa.Float(), nullable=False),
    sa.Column('close', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('round_id', keepers.persistence.tables.BigInt(length=80), nullable=True),
    sa.Column('updated_at', keepers.persistence.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('asset', 'timeframe_seconds', 'bar_time')
    )


def downgrade() -> None:
    op.drop_table('price_bars')
    op.drop_table('signals')
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trades_status'))
        batch_op.drop_index(batch_op.f('ix_trades_user_id'))
    op.drop_table('trades')
