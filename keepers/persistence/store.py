"""The keeper's store (the repository): trades, signals, price bars, risk state, cycles, heartbeats, leases.

SQLAlchemy 2.0 over a SQLite file by default (WAL, busy timeout) or any SQLAlchemy
URL (PostgreSQL for several keeper machines). The schema is versioned with Alembic
(keepers/persistence/migrations); ``Store.open`` upgrades an older store in place. Every write is
its own short transaction, so a crash between two writes leaves each row whole.

Times are timezone-aware UTC datetimes in Python (stored as naive UTC); token amounts
are Python ints (stored as decimal strings: uint256 does not fit a BIGINT).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import case, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from keepers.base.clock import now_utc
from keepers.base.errors import SentinelError
from keepers.persistence.engine import (
    alembic_config,
    error_line,
    make_engine,
    migration_lock,
)
from keepers.persistence.tables import (
    BAR_FROM_READINGS,
    BAR_FROM_ROUNDS,
    GLOBAL_USER,
    SIGNAL_COLUMNS,
    BarRow,
    ClearRow,
    CycleClaimRow,
    CycleRow,
    HeartbeatRow,
    LeaseRow,
    LockRow,
    PeakRow,
    PositionRow,
    RiskEventRow,
    RiskTradeRow,
    SignalRow,
    TradeRow,
    UTCDateTime,
)
from strategies.bars import Bar


class Store:
    """The keeper's persistence; open it with ``Store.open(url)``."""

    def __init__(self, engine: Engine, relaxed_engine: Engine | None = None) -> None:
        """``relaxed_engine`` serves ``session(durable=False)`` (by default ``engine``: a
        store opened only to read needs no second one)."""
        self.engine = engine
        self._relaxed_engine = relaxed_engine or engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._relaxed_sessions = sessionmaker(relaxed_engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, revision: str = "head") -> Store:
        """Connects to ``url`` and upgrades its schema to ``revision`` (normally head)."""
        engine = make_engine(url)
        store = cls(engine, make_engine(url, durable=False))
        try:
            with migration_lock(engine):
                command.upgrade(alembic_config(engine), revision)
        except OperationalError as error:
            store.close()
            raise SentinelError(f"store_url: cannot open the store ({error_line(error)}); check the URL and server") from None
        return store

    def close(self) -> None:
        """Releases every connection."""
        self.engine.dispose()
        self._relaxed_engine.dispose()

    @contextlib.contextmanager
    def session(self, *, durable: bool = True) -> Iterator[Session]:
        """One short transaction: committed on success, rolled back on error.

        A durable commit returns once the disk has it (SQLite ``synchronous=FULL``,
        PostgreSQL's default). ``durable=False`` is for the records every cycle writes
        that a later cycle rebuilds or can do without (price readings, signals, cycles,
        heartbeats): its commit survives a crash of the process but may be lost with the
        machine's power, and it does not wait for the disk (about 3 ms per commit here).
        Order holds: a durable commit makes every earlier commit durable too.
        """
        with (self._sessions if durable else self._relaxed_sessions).begin() as session:
            yield session

    def revision(self) -> str | None:
        """The schema revision the database is at."""
        with self.engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()

    # ------------------------------------------------------------------ trades
    def add_trade_intent(self, row: TradeRow) -> bool:
        """Stores a new decision; False when its trade id is already stored (decided before)."""
        try:
            with self.session() as session:
                session.add(row)
        except IntegrityError:
            return False
        return True

    def update_trade(self, trade_id: str, position: PositionRow | None = None, **fields: Any) -> TradeRow:
        """Sets fields of one trade (status, tx hash, results) and, for a trade mined now,
        its sleeve's new ``position``, in one transaction (the position never misses or
        doubles a trade, whatever crashes); returns the row as written (UPDATE ...
        RETURNING: no second read)."""
        fields["updated_at"] = now_utc()
        with self.session() as session:
            rows = list(session.scalars(update(TradeRow).where(TradeRow.trade_id == trade_id).values(**fields)
                                        .returning(TradeRow)))
            if len(rows) != 1:
                raise KeyError(f"no trade {trade_id}")
            if position is not None:
                position.updated_at = fields["updated_at"]
                session.merge(position)
            return rows[0]

    def positions(self, user_id: str) -> list[PositionRow]:
        """The user's sleeves as their mined trades left them (a few rows, whatever the history)."""
        with self.session() as session:
            return list(session.scalars(select(PositionRow).where(PositionRow.user_id == user_id)))

    def rebuild_positions(self, user_id: str, positions: Sequence[PositionRow]) -> None:
        """Replaces the user's sleeves (after a reorg took a mined trade off the chain)."""
        with self.session() as session:
            session.execute(delete(PositionRow).where(PositionRow.user_id == user_id))
            for position in positions:
                position.updated_at = now_utc()
                session.add(position)

    def trade(self, trade_id: str) -> TradeRow | None:
        """One trade by id."""
        with self.session() as session:
            return session.get(TradeRow, trade_id)

    def trades(self, user_id: str | None = None, statuses: Iterable[str] | None = None) -> list[TradeRow]:
        """Trades, oldest first, optionally of one user and with given statuses."""
        query = select(TradeRow).order_by(TradeRow.created_at, TradeRow.trade_id)
        if user_id is not None:
            query = query.where(TradeRow.user_id == user_id)
        if statuses is not None:
            query = query.where(TradeRow.status.in_(list(statuses)))
        with self.session() as session:
            return list(session.scalars(query))

    # ----------------------------------------------------------------- signals
    def add_signals(self, rows: Sequence[SignalRow]) -> set[tuple[str, str]]:
        """Stores a cycle's signals in one transaction; returns the (asset, strategy) of
        those stored: a bar another keeper already decided is skipped, not overwritten."""
        if not rows:
            return set()
        values = [{**{column: getattr(row, column) for column in SIGNAL_COLUMNS}, "acted": False} for row in rows]
        # Parameters apart from the statement: one cached statement, not one compiled per call.
        statement = self._insert(SignalRow).on_conflict_do_nothing(
            index_elements=["user_id", "asset", "strategy", "bar_time"]
        ).returning(SignalRow.asset, SignalRow.strategy)
        with self.session(durable=False) as session:
            return {(asset, strategy) for asset, strategy in session.execute(statement, values)}

    def signals(self, user_id: str | None = None) -> list[SignalRow]:
        """Signals, oldest bar first."""
        query = select(SignalRow).order_by(SignalRow.bar_time, SignalRow.id)
        if user_id is not None:
            query = query.where(SignalRow.user_id == user_id)
        with self.session() as session:
            return list(session.scalars(query))

    def last_decided_bars(self, user_id: str) -> dict[tuple[str, str], datetime]:
        """(asset, strategy) -> the newest bar already decided for this user."""
        query = select(SignalRow.asset, SignalRow.strategy, func.max(SignalRow.bar_time)).where(
            SignalRow.user_id == user_id).group_by(SignalRow.asset, SignalRow.strategy)
        with self.session() as session:
            return {(asset, strategy): UTCDateTime().process_result_value(when, None)
                    for asset, strategy, when in session.execute(query)}

    def unsettled_signals(self, user_id: str) -> list[SignalRow]:
        """The user's decisions recorded but not yet acted on (a keeper died in between),
        oldest bar first: a few at most, whatever the history."""
        query = select(SignalRow).where(SignalRow.user_id == user_id, SignalRow.acted.is_(False)).order_by(
            SignalRow.bar_time, SignalRow.id)
        with self.session() as session:
            return list(session.scalars(query))

    def settle_signal(self, user_id: str, asset: str, strategy: str, bar_time: datetime, outcome: str) -> None:
        """Marks one decision acted on, with what came of it."""
        with self.session(durable=False) as session:
            session.execute(update(SignalRow).where(
                SignalRow.user_id == user_id, SignalRow.asset == asset, SignalRow.strategy == strategy,
                SignalRow.bar_time == bar_time).values(acted=True, outcome=outcome[:300]))

    # -------------------------------------------------------------------- bars
    def record_prices(self, readings: Sequence[tuple[str, int, datetime, float, str, int | None]]) -> None:
        """Folds readings (asset, timeframe, bar start, price, source, round id) into their
        bars in one transaction: open on a bar's first reading, then high/low/close.
        Each is one upsert: workers on several machines fold readings of one bar at once."""
        if not readings:
            return
        stamp = now_utc()
        values = [{"asset": asset, "timeframe_seconds": timeframe_seconds, "bar_time": bar_time, "open": price,
                   "high": price, "low": price, "close": price, "source": source, "round_id": round_id,
                   "updated_at": stamp}
                  for asset, timeframe_seconds, bar_time, price, source, round_id in readings]
        with self.session(durable=False) as session:
            session.execute(self._fold_bar, values)

    @functools.cached_property
    def _fold_bar(self):
        """The upsert of one reading into its bar (compiled once); the same oracle round
        read again changes nothing."""
        bars = BarRow.__table__
        statement = self._insert(BarRow)
        new = statement.excluded
        return statement.on_conflict_do_update(
            index_elements=[bars.c.asset, bars.c.timeframe_seconds, bars.c.bar_time],
            set_={"high": case((new.high > bars.c.high, new.high), else_=bars.c.high),
                  "low": case((new.low < bars.c.low, new.low), else_=bars.c.low),
                  "close": new.close, "round_id": new.round_id, "updated_at": new.updated_at},
            where=new.round_id.is_(None) | bars.c.round_id.is_(None) | (bars.c.round_id != new.round_id),
        )

    def _insert(self, model):
        """The dialect's INSERT of ``model``, which knows ON CONFLICT (SQLite, PostgreSQL)."""
        return (sqlite_insert if self.engine.dialect.name == "sqlite" else postgresql_insert)(model)

    def add_bars(self, asset: str, timeframe_seconds: int, bars: Sequence[tuple[datetime, float, float, float, float]],
                 source: str) -> int:
        """Backfills whole bars (time, open, high, low, close) that are not stored yet; returns
        how many. A bar stored meanwhile (workers starting at once) is left as it is."""
        if not bars:
            return 0
        stamp = now_utc()
        values = [{"asset": asset, "timeframe_seconds": timeframe_seconds, "bar_time": when, "open": o, "high": h,
                   "low": lo, "close": c, "source": source, "round_id": None, "updated_at": stamp}
                  for when, o, h, lo, c in bars]
        statement = self._insert(BarRow).on_conflict_do_nothing(
            index_elements=["asset", "timeframe_seconds", "bar_time"]).returning(BarRow.bar_time)
        with self.session() as session:
            return len(session.execute(statement, values).all())

    def seal_bars(self, asset: str, timeframe_seconds: int, bars: Sequence[Bar]) -> int:
        """Stores closed bars derived from the feed's rounds (source "rounds"), replacing the
        provisional bars folded from readings (source "oracle"); a bar of a price file or one
        sealed already is left as it is. Returns how many bars were written."""
        if not bars:
            return 0
        stamp = now_utc()
        values = [{"asset": asset, "timeframe_seconds": timeframe_seconds, "bar_time": datetime.fromtimestamp(bar.start, UTC),
                   "open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close, "source": BAR_FROM_ROUNDS,
                   "round_id": bar.round_id, "updated_at": stamp} for bar in bars]
        table = BarRow.__table__
        statement = self._insert(BarRow)
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.asset, table.c.timeframe_seconds, table.c.bar_time],
            set_={column: getattr(new, column) for column in ("open", "high", "low", "close", "source", "round_id",
                                                              "updated_at")},
            where=table.c.source == BAR_FROM_READINGS,
        ).returning(BarRow.bar_time)
        with self.session() as session:
            return len(session.execute(statement, values).all())

    def sealed_through(self, assets: Iterable[str], timeframe_seconds: int, before: datetime) -> dict[str, datetime]:
        """Asset -> the start of its newest bar before ``before`` that is final (from the
        feed's rounds or a price file, not folded from readings)."""
        query = select(BarRow.asset, func.max(BarRow.bar_time)).where(
            BarRow.asset.in_(list(assets)), BarRow.timeframe_seconds == timeframe_seconds, BarRow.bar_time < before,
            BarRow.source != BAR_FROM_READINGS,
        ).group_by(BarRow.asset)
        with self.session() as session:
            return {asset: UTCDateTime().process_result_value(when, None) for asset, when in session.execute(query)}

    def newest_bar_times(self, assets: Iterable[str], timeframe_seconds: int, before: datetime) -> dict[str, datetime]:
        """Asset -> the start of its newest bar that starts before ``before``."""
        query = select(BarRow.asset, func.max(BarRow.bar_time)).where(
            BarRow.asset.in_(list(assets)), BarRow.timeframe_seconds == timeframe_seconds, BarRow.bar_time < before
        ).group_by(BarRow.asset)
        with self.session() as session:
            return {asset: UTCDateTime().process_result_value(when, None) for asset, when in session.execute(query)}

    def closes(self, asset: str, timeframe_seconds: int, before: datetime) -> list[float]:
        """Closes of the bars of an asset that start before ``before``, oldest first."""
        query = select(BarRow.close).where(
            BarRow.asset == asset, BarRow.timeframe_seconds == timeframe_seconds, BarRow.bar_time < before
        ).order_by(BarRow.bar_time)
        with self.session() as session:
            return list(session.scalars(query))

    def bars(self, asset: str, timeframe_seconds: int, before: datetime | None = None) -> list[BarRow]:
        """Bars of an asset, oldest first; only those starting before ``before`` if given."""
        query = select(BarRow).where(BarRow.asset == asset, BarRow.timeframe_seconds == timeframe_seconds)
        if before is not None:
            query = query.where(BarRow.bar_time < before)
        with self.session() as session:
            return list(session.scalars(query.order_by(BarRow.bar_time)))

    # -------------------------------------------------------------------- risk
    def risk_state(self, user_id: str, span: timedelta | None = None, newest: int = 1) -> tuple[
            list[RiskTradeRow], list[LockRow], dict[str, datetime], float | None]:
        """A user's risk trades (oldest first; with ``span``, only those the rules can still
        see: within ``span`` of the newest one, and the ``newest`` newest, a bounded read
        however long the history), locks (the global ones included), clears and
        vault-value peak, read together."""
        by_time = (RiskTradeRow.timestamp.desc(), RiskTradeRow.id.desc())
        mine = RiskTradeRow.user_id == user_id
        with self.session() as session:
            if span is None:
                trades = list(session.scalars(select(RiskTradeRow).where(mine).order_by(
                    RiskTradeRow.timestamp, RiskTradeRow.id)))
            else:
                last = list(session.scalars(select(RiskTradeRow).where(mine).order_by(*by_time).limit(newest)))
                recent = [] if not last else list(session.scalars(
                    select(RiskTradeRow).where(mine, RiskTradeRow.timestamp >= last[0].timestamp - span)))
                trades = sorted({row.id: row for row in (*last, *recent)}.values(),
                                key=lambda row: (row.timestamp, row.id))
            locks = session.scalars(select(LockRow).where(LockRow.user_id.in_([user_id, GLOBAL_USER])))
            clears = session.scalars(select(ClearRow).where(ClearRow.user_id == user_id))
            peak = session.get(PeakRow, user_id)
            return (trades, list(locks), {row.rule: row.cleared_at for row in clears},
                    None if peak is None else peak.peak_value_quote)

    def add_risk_trade(self, row: RiskTradeRow, locks: Sequence[LockRow]) -> bool:
        """Stores a trade and the locks it caused together; False if the trade id is known."""
        try:
            with self.session() as session:
                session.add(row)
                for lock in locks:
                    session.merge(lock)
        except IntegrityError:
            return False
        return True

    def locks(self, user_ids: Iterable[str]) -> list[LockRow]:
        """Locks of these users (include GLOBAL_USER for the global ones)."""
        with self.session() as session:
            return list(session.scalars(select(LockRow).where(LockRow.user_id.in_(list(user_ids)))))

    def save_lock(self, lock: LockRow) -> None:
        """Adds or replaces a lock."""
        with self.session() as session:
            session.merge(lock)

    def clear_rule(self, user_id: str, rule: str, when: datetime) -> int:
        """Lifts a rule's locks of a user by hand and remembers when; returns locks removed."""
        with self.session() as session:
            removed = session.execute(delete(LockRow).where(LockRow.user_id == user_id, LockRow.rule == rule))
            session.merge(ClearRow(user_id=user_id, rule=rule, cleared_at=when))
            return removed.rowcount

    def add_risk_event(self, user_id: str, asset: str, rule: str, reason: str, when: datetime) -> None:
        """Records a trade that was stopped, and why."""
        with self.session() as session:
            session.add(RiskEventRow(user_id=user_id, asset=asset, rule=rule, reason=reason[:500], time=when))

    def risk_events(self, user_id: str | None = None) -> list[RiskEventRow]:
        """Stopped trades, oldest first."""
        query = select(RiskEventRow).order_by(RiskEventRow.time, RiskEventRow.id)
        if user_id is not None:
            query = query.where(RiskEventRow.user_id == user_id)
        with self.session() as session:
            return list(session.scalars(query))

    def raise_peak(self, user_id: str, value_quote: float, when: datetime) -> float:
        """Keeps the highest vault value seen; returns the peak after this value."""
        with self.session() as session:
            row = session.get(PeakRow, user_id)
            if row is None:
                session.add(PeakRow(user_id=user_id, peak_value_quote=value_quote, updated_at=when))
                return value_quote
            if value_quote > row.peak_value_quote:
                row.peak_value_quote, row.updated_at = value_quote, when
            return row.peak_value_quote

    def reset_peak(self, user_id: str) -> None:
        """Forgets the peak (after a kill switch is cleared, the current value is the new reference)."""
        with self.session() as session:
            session.execute(delete(PeakRow).where(PeakRow.user_id == user_id))

    # ------------------------------------------------ cycles, heartbeats, leases
    def add_cycle(self, row: CycleRow) -> None:
        """Records one finished cycle."""
        with self.session(durable=False) as session:
            session.add(row)

    def cycles(self, user_id: str) -> list[CycleRow]:
        """A user's cycles in chain-time order."""
        query = select(CycleRow).where(CycleRow.user_id == user_id).order_by(CycleRow.block_time, CycleRow.id)
        with self.session() as session:
            return list(session.scalars(query))

    def last_cycles(self) -> dict[str, CycleRow]:
        """The newest cycle of each user."""
        with self.session() as session:
            rows = session.scalars(select(CycleRow).order_by(CycleRow.started_at, CycleRow.id))
            return {row.user_id: row for row in rows}

    def beat(self, keeper_id: str, *, interval_seconds: int, pid: int, host: str, started_at: datetime) -> None:
        """Marks a keeper alive now."""
        with self.session(durable=False) as session:
            session.merge(HeartbeatRow(keeper_id=keeper_id, last_seen=now_utc(), started_at=started_at,
                                       interval_seconds=interval_seconds, pid=pid, host=host))

    def heartbeats(self) -> list[HeartbeatRow]:
        """Every keeper's last sign of life."""
        with self.session() as session:
            return list(session.scalars(select(HeartbeatRow).order_by(HeartbeatRow.keeper_id)))

    def acquire_lease(self, user_id: str, owner: str, now: datetime, until: datetime) -> bool:
        """Takes (or renews) a user's lease unless another owner holds an unexpired one."""
        try:
            with self.session() as session:
                taken = session.execute(
                    update(LeaseRow)
                    .where(LeaseRow.user_id == user_id, (LeaseRow.owner == owner) | (LeaseRow.expires_at <= now))
                    .values(owner=owner, expires_at=until, acquired_at=now)
                ).rowcount
                if taken:
                    return True
                if session.get(LeaseRow, user_id) is not None:
                    return False
                session.add(LeaseRow(user_id=user_id, owner=owner, expires_at=until, acquired_at=now))
        except IntegrityError:  # another keeper inserted it first
            return False
        return True

    def release_lease(self, user_id: str, owner: str) -> None:
        """Gives a user back (only if this owner holds it)."""
        with self.session() as session:
            session.execute(delete(LeaseRow).where(LeaseRow.user_id == user_id, LeaseRow.owner == owner))

    def leases(self) -> list[LeaseRow]:
        """Every lease."""
        with self.session() as session:
            return list(session.scalars(select(LeaseRow)))

    def claim_cycle(self, user_id: str, slot: int, keeper_id: str) -> bool:
        """Records that ``keeper_id`` runs ``user_id``'s cycle of ``slot``; False when
        that cycle was claimed before (the task was delivered twice)."""
        try:
            with self.session() as session:
                session.add(CycleClaimRow(user_id=user_id, slot=slot, keeper_id=keeper_id, claimed_at=now_utc()))
        except IntegrityError:
            return False
        return True

    def cycle_claims(self, user_id: str | None = None) -> list[CycleClaimRow]:
        """The claimed cycles (of one user), oldest slot first."""
        query = select(CycleClaimRow).order_by(CycleClaimRow.slot, CycleClaimRow.user_id)
        if user_id is not None:
            query = query.where(CycleClaimRow.user_id == user_id)
        with self.session() as session:
            return list(session.scalars(query))

