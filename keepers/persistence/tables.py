"""The keeper's tables: trades and their write-ahead statuses, signals, price bars,
risk state, cycles, heartbeats, leases, cycle claims and operators' control actions
(SQLAlchemy 2.0 typed models).

Times are timezone-aware UTC datetimes in Python (stored as naive UTC); token amounts
are Python ints (stored as decimal strings: uint256 does not fit a BIGINT). The
migrations under keepers/persistence/migrations create exactly these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Trade statuses in write-ahead order; the last four are final.
INTENT, SENT, MINED, FAILED, REVERTED, DROPPED, SKIPPED = (
    "intent", "sent", "mined", "failed", "reverted", "dropped", "skipped",
)
UNFINISHED = (INTENT, SENT)
GLOBAL_USER = "*"
"""The user id of state that covers every user (the global kill switch)."""
# Control actions an operator takes from the status page or API; an exit is a request
# the user's next cycle acts on (pending -> done), the others act at once (done).
KILL, RESUME, EXIT_NOW = "kill", "resume", "exit_now"
PENDING, DONE = "pending", "done"


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("store times must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class BigInt(TypeDecorator):
    """Python ints of any size as decimal strings (uint256 amounts)."""

    impl = String(80)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect) -> str | None:
        return None if value is None else str(int(value))

    def process_result_value(self, value: str | None, dialect) -> int | None:
        return None if value is None else int(value)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class TradeRow(Base):
    """One trade decision through its write-ahead states (intent -> sent -> final)."""

    __tablename__ = "trades"
    # A cycle reads only a user's unfinished rows: found by index, whatever the history.
    __table_args__ = (Index("ix_trades_user_status", "user_id", "status"),)

    trade_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    user_address: Mapped[str] = mapped_column(String(42))
    keeper_id: Mapped[str] = mapped_column(String(120))
    chain_id: Mapped[int] = mapped_column(Integer)
    asset: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(40))
    side: Mapped[str] = mapped_column(String(4))
    bar_time: Mapped[datetime] = mapped_column(UTCDateTime)
    token_in: Mapped[str] = mapped_column(String(42))
    token_out: Mapped[str] = mapped_column(String(42))
    amount_in: Mapped[int] = mapped_column(BigInt)
    min_amount_out: Mapped[int | None] = mapped_column(BigInt)
    oracle_floor: Mapped[int | None] = mapped_column(BigInt)
    pool_amount_out: Mapped[int | None] = mapped_column(BigInt)
    amount_out: Mapped[int | None] = mapped_column(BigInt)
    price_in: Mapped[int | None] = mapped_column(BigInt)
    price_out: Mapped[int | None] = mapped_column(BigInt)
    status: Mapped[str] = mapped_column(String(10), index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    replaced_tx_hashes: Mapped[list] = mapped_column(JSON, default=list)
    nonce: Mapped[int | None] = mapped_column(Integer)
    block_number: Mapped[int | None] = mapped_column(Integer)
    gas_used: Mapped[int | None] = mapped_column(Integer)
    gas_price: Mapped[int | None] = mapped_column(BigInt)
    revert_reason: Mapped[str | None] = mapped_column(String(500))
    # A protective exit's (strategy "exit"): what triggered it, and the bounty its caller
    # took from the output (amount_out is what the user received).
    exit_trigger: Mapped[str | None] = mapped_column(String(16))
    bounty: Mapped[int | None] = mapped_column(BigInt)
    dry_run: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SignalRow(Base):
    """A strategy's decision for one closed bar of one asset of one user."""

    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("user_id", "asset", "strategy", "bar_time"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(40))
    asset: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(40))
    bar_time: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(4))
    confidence: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(500))
    indicators: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # False from the moment the decision is recorded until the cycle has acted on it
    # (traded, or recorded why not): a keeper that dies in between leaves it False.
    acted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=true())
    # What came of it, once acted on: "traded ...", "blocked by <rule>: ...", "no trade: ...",
    # or "expired: ..." (its keeper died and the next cycle came after the next bar closed).
    outcome: Mapped[str | None] = mapped_column(String(300), nullable=True)


SIGNAL_COLUMNS = ("user_id", "asset", "strategy", "bar_time", "action", "confidence", "reason", "indicators",
                  "created_at")


BAR_FROM_READINGS = "oracle"
"""A bar's source while it is open: folded from the keeper's readings (provisional)."""
BAR_FROM_ROUNDS = "rounds"
"""A closed bar's source once derived from the feed's rounds (strategies/bars.py): final."""


class BarRow(Base):
    """One price bar of one price series: folded from readings while open, then sealed from
    the feed's rounds (``source``), or backfilled from a price file ("file")."""

    __tablename__ = "price_bars"

    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    timeframe_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_time: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))
    round_id: Mapped[int | None] = mapped_column(BigInt)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PositionRow(Base):
    """One sleeve of a user (an asset and the strategy that trades it), kept as each of
    its trades is mined: a cycle reads these few rows, not the whole trade history."""

    __tablename__ = "positions"

    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(40), primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInt)  # base units of the asset
    cost_quote: Mapped[float] = mapped_column(Float)
    realised_quote: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RiskTradeRow(Base):
    """A trade as the risk rules see it (strategies.risk.TradeRecord)."""

    __tablename__ = "risk_trades"
    # A keeper restores only the newest trades of a user (strategies.risk.RiskLimits.memory).
    __table_args__ = (Index("ix_risk_trades_user_time", "user_id", "timestamp"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    asset: Mapped[str] = mapped_column(String(16))
    pnl_quote: Mapped[float | None] = mapped_column(Float)
    success: Mapped[bool] = mapped_column()
    trade_id: Mapped[str | None] = mapped_column(String(66), unique=True)


class LockRow(Base):
    """A risk lock (``until`` None: a kill switch, cleared only by a person)."""

    __tablename__ = "risk_locks"

    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    rule: Mapped[str] = mapped_column(String(40), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClearRow(Base):
    """When a person last cleared a rule's locks for a user."""

    __tablename__ = "risk_clears"

    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    rule: Mapped[str] = mapped_column(String(40), primary_key=True)
    cleared_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RiskEventRow(Base):
    """A trade the risk manager (or a failed check) stopped, with its reason."""

    __tablename__ = "risk_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    asset: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(500))
    time: Mapped[datetime] = mapped_column(UTCDateTime)


class PeakRow(Base):
    """The highest vault value seen for a user (the drawdown kill switch's reference)."""

    __tablename__ = "risk_peaks"

    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    peak_value_quote: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CycleRow(Base):
    """One user's cycle: what it cost and what it did."""

    __tablename__ = "cycles"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    keeper_id: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    block_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[float] = mapped_column(Float)
    rpc_calls: Mapped[int] = mapped_column(Integer)
    signals: Mapped[int] = mapped_column(Integer)
    trades_ok: Mapped[int] = mapped_column(Integer)
    trades_failed: Mapped[int] = mapped_column(Integer)
    blocks: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[float] = mapped_column(Float)
    vault_value_quote: Mapped[float | None] = mapped_column(Float)
    position_value_quote: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(500))


class HeartbeatRow(Base):
    """The last sign of life of one keeper process."""

    __tablename__ = "heartbeats"

    keeper_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(120))


class LeaseRow(Base):
    """Which keeper runs a user until when: one keeper per user at a time."""

    __tablename__ = "leases"

    user_id: Mapped[str] = mapped_column(String(80), primary_key=True)  # or account:<address> (a worker's account)
    owner: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CycleClaimRow(Base):
    """Which worker ran a user's cycle of one scheduling slot (workers sharing a store)."""

    __tablename__ = "cycle_claims"

    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    keeper_id: Mapped[str] = mapped_column(String(120))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ExitMarkRow(Base):
    """A user's protective exit of one token as the keeper follows it between cycles
    (strategies.exits.ExitWatch): the protection's start it knows (unix seconds; None: spent)
    and the highest feed round seen since, the trailing stop's high-water mark."""

    __tablename__ = "exit_marks"

    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    started_at: Mapped[int | None] = mapped_column(BigInt)
    high_round_id: Mapped[int | None] = mapped_column(BigInt)
    high_price: Mapped[int | None] = mapped_column(BigInt)  # USD, 18 decimals
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ControlActionRow(Base):
    """An operator's action (kill, resume, exit now): who asked, from where, when, and what came of it."""

    __tablename__ = "control_actions"
    # A cycle reads only its user's pending exits: found by index, whatever the history.
    __table_args__ = (Index("ix_control_actions_user_status", "user_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(40))  # GLOBAL_USER: the global kill switch
    asset: Mapped[str | None] = mapped_column(String(16))  # the token an exit sells
    operator: Mapped[str] = mapped_column(String(64))  # the name the request gave
    client_address: Mapped[str] = mapped_column(String(64))  # the address the request came from
    reason: Mapped[str] = mapped_column(String(300))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str | None] = mapped_column(String(300))
    trade_id: Mapped[str | None] = mapped_column(String(66))  # the trade an exit made
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserRevisionRow(Base):
    """How many writes a user's state has had (GLOBAL_USER: the global kill switch's), counted
    by the database's own triggers on every table a cycle reads of its user (migration 0008;
    a decision stored already acted on is not counted, migration 0009: it changes nothing a
    cycle reads): a keeper keeping the user's rows in memory re-reads them only when this moved."""

    __tablename__ = "user_revisions"

    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)
