"""The keeper's store (the repository): trades, signals, price bars, risk state, cycles, heartbeats, leases,
operators' control actions.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from alembic import command
from sqlalchemy import bindparam, case, delete, select, text, union_all, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, Row
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
    DONE,
    GLOBAL_USER,
    PENDING,
    SIGNAL_COLUMNS,
    UNFINISHED,
    BarRow,
    ClearRow,
    ControlActionRow,
    CycleClaimRow,
    CycleRow,
    ExitMarkRow,
    HeartbeatRow,
    LeaseRow,
    LockRow,
    PeakRow,
    PositionRow,
    RiskEventRow,
    RiskTradeRow,
    SignalRow,
    TradeRow,
    UserRevisionRow,
)
from strategies.bars import Bar


class RiskRows(NamedTuple):
    """A user's risk state as stored: the risk trades the rules can still see (oldest
    first; rows of RiskTradeRow's id, timestamp, asset, pnl_quote, success and trade_id),
    the locks (the global ones included), the clears and the vault-value peak."""

    trades: list[Row]
    locks: list[LockRow]
    clears: dict[str, datetime]
    peak: float | None


@dataclass(frozen=True)
class UserRows:
    """What a cycle reads of one user at its start, in one transaction: a bounded number of
    rows whatever the user's history."""

    unfinished: list[TradeRow]  # trades still intent or sent
    risk: RiskRows
    positions: list[PositionRow]
    unsettled: list[SignalRow]  # decisions recorded, not yet acted on (oldest bar first)
    pending_exits: list[ControlActionRow]  # operators' "exit now" requests not acted on yet (oldest first)
    exit_marks: list[ExitMarkRow]  # the protective exits the keeper follows (one per protected token)
    revision: tuple[int, int]  # the writes counted to the user's state and the global locks' (migration 0008)

    @property
    def quiet(self) -> bool:
        """Nothing in progress: no unfinished trade, no decision waiting to be acted on, no
        exit request pending (the state a cycle can keep in memory while no write moves it)."""
        return not (self.unfinished or self.unsettled or self.pending_exits)


class SignalOutcome(NamedTuple):
    """What came of one recorded decision: the user's (asset, strategy, bar) and the outcome."""

    user_id: str
    asset: str
    strategy: str
    bar_time: datetime
    outcome: str


class TakenUsers(NamedTuple):
    """What ``Store.acquire_leases`` did: the users now leased (and their cycle of the slot
    claimed), those another keeper holds, and those whose cycle of the slot ran before."""

    users: list[str]
    held: list[str]
    ran_before: list[str]


@dataclass(frozen=True)
class BarHeads:
    """Per price series, the newest stored bar before some bar start, and the newest final one."""

    newest: dict[str, datetime]  # provisional (folded from readings) included
    final: dict[str, datetime]  # from the feed's rounds or a price file


class Store:
    """The keeper's persistence; open it with ``Store.open(url)``."""

    def __init__(self, engine: Engine, relaxed_engine: Engine | None = None) -> None:
        """``relaxed_engine`` serves ``session(durable=False)`` (by default ``engine``: a
        store opened only to read needs no second one)."""
        self.engine = engine
        self._relaxed_engine = relaxed_engine or engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._relaxed_sessions = sessionmaker(relaxed_engine, expire_on_commit=False)
        # Per (series, timeframe): the (bar, round) this store folded last. The same round read
        # again changes nothing (``_fold_bar``), so a steady cycle need not send it.
        self._folded: dict[tuple[str, int], tuple[datetime, int]] = {}

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

    def update_trade(self, trade_id: str, *positions: PositionRow | None, **fields: Any) -> TradeRow:
        """Sets fields of one trade (status, tx hash, results) and, for a trade mined now,
        its sleeves' new ``positions`` (one; every sleeve of the token for an exit; None:
        none), in one transaction (a position never misses or doubles a trade, whatever
        crashes); returns the row as written (UPDATE ... RETURNING: no second read)."""
        with self.session() as session:
            return _update_trade(session, trade_id, positions, fields)

    def settle_trade(self, trade_id: str, positions: Sequence[PositionRow], risk_trade: RiskTradeRow,
                     locks: Sequence[LockRow], **fields: Any) -> tuple[TradeRow, bool]:
        """``update_trade`` of a trade that ended (mined, reverted) together with the risk
        rules' record of it and the locks it caused, in one transaction; returns the row as
        written and whether the risk record is new (False: its trade id was recorded
        before, as by a restart settling the trade again, and the locks are not stored)."""
        with self.session() as session:
            settled = _update_trade(session, trade_id, positions, fields)
            return settled, self._add_risk_trade(session, risk_trade, locks)

    def positions(self, user_id: str) -> list[PositionRow]:
        """The user's sleeves as their mined trades left them (a few rows, whatever the history)."""
        return self.positions_of([user_id])

    def positions_of(self, user_ids: Iterable[str]) -> list[PositionRow]:
        """``positions`` of several users in one read."""
        with self.session() as session:
            return list(session.scalars(select(PositionRow).where(PositionRow.user_id.in_(list(user_ids)))))

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
    def record_decisions(self, decisions: Sequence[SignalRow],
                         outcomes: Sequence[SignalOutcome] = ()) -> set[tuple[str, str]]:
        """Stores new decisions (each acted on already, with its outcome, or open: ``acted``
        False) and the outcomes of decisions stored open before, in one transaction; returns
        the (asset, strategy) of the new ones stored: a bar another keeper already decided is
        skipped, not overwritten."""
        if not decisions and not outcomes:
            return set()
        with self.session(durable=False) as session:
            stored = set()
            if decisions:
                values = [{**{column: getattr(row, column) for column in SIGNAL_COLUMNS}, "acted": bool(row.acted),
                           "outcome": None if row.outcome is None else row.outcome[:300]} for row in decisions]
                # Core, not the ORM's bulk insert: plain rows back, half the cost (a timing run).
                stored = {(asset, strategy)
                          for asset, strategy in session.connection().execute(self._insert_decision, values)}
            if outcomes:
                session.connection().execute(_SETTLE_DECISION, [
                    {"b_user": o.user_id, "b_asset": o.asset, "b_strategy": o.strategy, "b_bar": o.bar_time,
                     "b_outcome": o.outcome[:300]} for o in outcomes])
            return stored

    @functools.cached_property
    def _insert_decision(self):
        """The insert of one decision unless its bar is decided (compiled once, run for many)."""
        signals = SignalRow.__table__
        return self._insert(signals).on_conflict_do_nothing(
            index_elements=["user_id", "asset", "strategy", "bar_time"]
        ).returning(signals.c.asset, signals.c.strategy)

    def signals(self, user_id: str | None = None) -> list[SignalRow]:
        """Signals, oldest bar first."""
        query = select(SignalRow).order_by(SignalRow.bar_time, SignalRow.id)
        if user_id is not None:
            query = query.where(SignalRow.user_id == user_id)
        with self.session() as session:
            return list(session.scalars(query))

    def unsettled_signals(self, user_id: str) -> list[SignalRow]:
        """The user's decisions recorded but not yet acted on (a keeper died in between),
        oldest bar first: a few at most, whatever the history."""
        query = select(SignalRow).where(SignalRow.user_id == user_id, SignalRow.acted.is_(False)).order_by(
            SignalRow.bar_time, SignalRow.id)
        with self.session() as session:
            return list(session.scalars(query))

    # -------------------------------------------------------------------- bars
    def record_prices(self, readings: Sequence[tuple[str, int, datetime, float, str, int | None]]) -> None:
        """Folds readings (asset, timeframe, bar start, price, source, round id) into their
        bars in one transaction: open on a bar's first reading, then high/low/close.
        Each is one upsert: workers on several machines fold readings of one bar at once."""
        readings = self._unfolded(readings)
        if not readings:
            return
        with self.session(durable=False) as session:
            session.execute(self._fold_bar, self._reading_values(readings))
        self._note_folded(readings)

    def _unfolded(self, readings: Iterable[tuple]) -> list[tuple]:
        """The readings whose round is not the one this store folded last into their bar."""
        return [(asset, timeframe_seconds, bar_time, price, source, round_id)
                for asset, timeframe_seconds, bar_time, price, source, round_id in readings
                if round_id is None or self._folded.get((asset, timeframe_seconds)) != (bar_time, round_id)]

    def _note_folded(self, readings: Sequence[tuple]) -> None:
        """Remembers the rounds just folded (after their commit)."""
        for asset, timeframe_seconds, bar_time, _, _, round_id in readings:
            if round_id is not None:
                self._folded[(asset, timeframe_seconds)] = (bar_time, round_id)

    @staticmethod
    def _reading_values(readings: Sequence[tuple[str, int, datetime, float, str, int | None]]) -> list[dict]:
        stamp = now_utc()
        return [{"asset": asset, "timeframe_seconds": timeframe_seconds, "bar_time": bar_time, "open": price,
                 "high": price, "low": price, "close": price, "source": source, "round_id": round_id,
                 "updated_at": stamp}
                for asset, timeframe_seconds, bar_time, price, source, round_id in readings]

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

    def seal_bars(self, timeframe_seconds: int, bars: Mapping[str, Sequence[Bar]]) -> dict[str, int]:
        """Stores closed bars of each asset derived from the feed's rounds (source "rounds"),
        replacing the provisional bars folded from readings (source "oracle"); a bar of a
        price file or one sealed already is left as it is. One transaction for every asset;
        not waiting for the disk: a sealed bar lost with the machine's power is derived
        again from the same rounds by the next cycle. Returns how many bars were written per asset."""
        stamp = now_utc()
        values = [{"asset": asset, "timeframe_seconds": timeframe_seconds,
                   "bar_time": datetime.fromtimestamp(bar.start, UTC), "open": bar.open, "high": bar.high,
                   "low": bar.low, "close": bar.close, "source": BAR_FROM_ROUNDS, "round_id": bar.round_id,
                   "updated_at": stamp} for asset, of_asset in bars.items() for bar in of_asset]
        written = dict.fromkeys(bars, 0)
        if not values:
            return written
        table = BarRow.__table__
        statement = self._insert(BarRow)
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.asset, table.c.timeframe_seconds, table.c.bar_time],
            set_={column: getattr(new, column) for column in ("open", "high", "low", "close", "source", "round_id",
                                                              "updated_at")},
            where=table.c.source == BAR_FROM_READINGS,
        ).returning(BarRow.asset)
        with self.session(durable=False) as session:
            for (asset,) in session.execute(statement, values):
                written[asset] += 1
        return written

    def decision_view(self, user_id: str, assets: Iterable[str], timeframe_seconds: int, bar_time: datetime,
                      pairs: Iterable[tuple[str, str]]) -> tuple[BarHeads, set[tuple[str, str]]]:
        """What a cycle reads to decide on the bar starting at ``bar_time``, in one
        transaction: the assets' bar heads before the next bar, and which of ``pairs``
        (token, strategy) the user decided on that bar or a later one. The signals' unique
        index (user, asset, strategy, bar time) serves the second read with one range per
        pair: its cost does not grow with the user's history."""
        pairs = set(pairs)
        with self.session() as session:
            heads = _bar_heads(session, assets, timeframe_seconds, bar_time + timedelta(seconds=timeframe_seconds))
            decided = session.connection().execute(_DECIDED, {
                "user": user_id, "assets": sorted({asset for asset, _ in pairs}),
                "strategies": sorted({strategy for _, strategy in pairs}), "bar": bar_time})
            return heads, {pair for pair in decided if tuple(pair) in pairs}

    def closes(self, assets: Mapping[str, datetime | None], timeframe_seconds: int,
               before: datetime) -> dict[str, list[tuple[datetime, float, bool]]]:
        """Per asset, (start, close, final) of its bars that start before ``before`` and at or
        after ``assets[asset]`` (None: from the first), oldest first, in one transaction;
        final: from the feed's rounds or a price file, not folded from readings."""
        found = {}
        with self.session() as session:
            for asset, since in assets.items():
                query = select(BarRow.bar_time, BarRow.close, BarRow.source != BAR_FROM_READINGS).where(
                    BarRow.asset == asset, BarRow.timeframe_seconds == timeframe_seconds, BarRow.bar_time < before)
                if since is not None:
                    query = query.where(BarRow.bar_time >= since)
                found[asset] = [(start, close, bool(final))
                                for start, close, final in session.execute(query.order_by(BarRow.bar_time))]
        return found

    def bars(self, asset: str, timeframe_seconds: int, before: datetime | None = None) -> list[BarRow]:
        """Bars of an asset, oldest first; only those starting before ``before`` if given."""
        query = select(BarRow).where(BarRow.asset == asset, BarRow.timeframe_seconds == timeframe_seconds)
        if before is not None:
            query = query.where(BarRow.bar_time < before)
        with self.session() as session:
            return list(session.scalars(query.order_by(BarRow.bar_time)))

    # -------------------------------------------------------------------- risk
    def risk_state(self, user_id: str, span: timedelta | None = None, newest: int = 1) -> RiskRows:
        """A user's risk trades (oldest first; with ``span``, only those the rules can still
        see: within ``span`` of the newest one, and the ``newest`` newest, a bounded read
        however long the history), locks (the global ones included), clears and
        vault-value peak, read together."""
        with self.session() as session:
            return _risk_rows(session, user_id, span, newest)

    def user_rows(self, user_id: str, span: timedelta, newest: int, *, since: datetime,
                  unless_revision: tuple[int, int] | None = None) -> UserRows | None:
        """Everything a cycle reads of ``user_id`` before it decides, in one transaction: its
        unfinished trades, its sleeves, its decisions not yet acted on, its pending "exit
        now" requests, and the risk state
        rules with memory ``(span, newest)`` (``RiskLimits.memory``) need at ``since`` or
        later: the ``newest`` newest risk trades and those within ``span`` before ``since``
        or before the oldest unfinished trade's bar, whichever is earlier (settling it
        records it at that bar). An old history costs nothing: none of it is read.

        With ``unless_revision``: None, and nothing else read, when the user's revision (the
        writes the store's triggers counted, migrations 0008 and 0009) is still that one: rows read at
        it are still true."""
        with self.session() as session:
            revision = _user_revision(session, user_id)
            if revision == unless_revision:
                return None
            unfinished = list(session.scalars(select(TradeRow).where(
                TradeRow.user_id == user_id, TradeRow.status.in_(UNFINISHED)).order_by(
                TradeRow.created_at, TradeRow.trade_id)))
            earliest = min([since, *(row.bar_time for row in unfinished)])
            return UserRows(
                unfinished=unfinished,
                risk=_risk_rows(session, user_id, span, newest, not_before=earliest - span),
                positions=list(session.scalars(select(PositionRow).where(PositionRow.user_id == user_id))),
                unsettled=list(session.scalars(select(SignalRow).where(
                    SignalRow.user_id == user_id, SignalRow.acted.is_(False)).order_by(
                    SignalRow.bar_time, SignalRow.id))),
                pending_exits=list(session.scalars(_pending_exits(user_id))),
                exit_marks=list(session.scalars(select(ExitMarkRow).where(ExitMarkRow.user_id == user_id))),
                revision=revision,
            )

    def add_risk_trade(self, row: RiskTradeRow, locks: Sequence[LockRow]) -> bool:
        """Stores a trade and the locks it caused together; False if the trade id is known."""
        with self.session() as session:
            return self._add_risk_trade(session, row, locks)

    def _add_risk_trade(self, session: Session, row: RiskTradeRow, locks: Sequence[LockRow]) -> bool:
        """``add_risk_trade`` in ``session``: an insert that does nothing for a known trade id
        (no error to roll the transaction back: a settlement's other writes stand)."""
        values = {column.key: getattr(row, column.key) for column in RiskTradeRow.__table__.columns
                  if column.key != "id"}
        added = session.scalar(self._insert(RiskTradeRow).values(**values)
                               .on_conflict_do_nothing(index_elements=["trade_id"])
                               .returning(RiskTradeRow.id)) is not None
        if added:
            for lock in locks:
                session.merge(lock)
        return added

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
    def add_cycle(self, row: CycleRow, readings: Sequence[tuple[str, int, datetime, float, str, int | None]] = (),
                  exit_marks: Sequence[ExitMarkRow] = ()) -> None:
        """Records one finished cycle, folds the price ``readings`` it took into their bars
        (as ``record_prices``) and keeps the protective exits' marks it moved, in one transaction."""
        self.add_cycles([(row, readings, exit_marks)])

    def add_cycles(self, records: Sequence[tuple[CycleRow, Sequence[tuple], Sequence[ExitMarkRow]]]) -> None:
        """Records the finished cycles of a batch of users, each with its price readings and
        exit marks (as ``add_cycle``), in one transaction; a reading several users took (one
        round of one feed) is folded once."""
        if not records:
            return
        readings = self._unfolded(dict.fromkeys(reading for _, cycle_readings, _ in records
                                                for reading in cycle_readings))
        with self.session(durable=False) as session:
            if readings:
                session.execute(self._fold_bar, self._reading_values(readings))
            for _, _, exit_marks in records:
                for mark in exit_marks:
                    session.merge(mark)
            session.add_all([row for row, _, _ in records])
        self._note_folded(readings)

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

    def acquire_leases(self, user_ids: Sequence[str], owner: str, now: datetime, until: datetime, *,
                       slot: int | None = None) -> TakenUsers:
        """``acquire_lease`` for several users in one transaction; with ``slot``, also the
        claim of each leased user's cycle of that slot (``claim_cycle``): a user whose
        cycle of the slot was claimed before is given back at once."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return TakenUsers([], [], [])
        mine = (LeaseRow.owner == owner) | (LeaseRow.expires_at <= now)
        with self.session() as session:
            taken = set(session.scalars(
                update(LeaseRow).where(LeaseRow.user_id.in_(ids), mine)
                .values(owner=owner, expires_at=until, acquired_at=now).returning(LeaseRow.user_id)
                .execution_options(synchronize_session=False)))
            missing = [user_id for user_id in ids if user_id not in taken]
            if missing:  # another keeper's insert of the same user wins; this one does nothing
                taken |= set(session.scalars(
                    self._insert(LeaseRow).on_conflict_do_nothing(index_elements=["user_id"])
                    .returning(LeaseRow.user_id),
                    [{"user_id": user_id, "owner": owner, "expires_at": until, "acquired_at": now}
                     for user_id in missing]))
            leased = [user_id for user_id in ids if user_id in taken]
            ran_before: list[str] = []
            if slot is not None and leased:
                claimed = set(session.scalars(
                    self._insert(CycleClaimRow).on_conflict_do_nothing(index_elements=["user_id", "slot"])
                    .returning(CycleClaimRow.user_id),
                    [{"user_id": user_id, "slot": slot, "keeper_id": owner, "claimed_at": now}
                     for user_id in leased]))
                ran_before = [user_id for user_id in leased if user_id not in claimed]
                if ran_before:
                    session.execute(delete(LeaseRow).where(LeaseRow.user_id.in_(ran_before),
                                                           LeaseRow.owner == owner))
            return TakenUsers(users=[user_id for user_id in leased if user_id not in ran_before],
                              held=[user_id for user_id in ids if user_id not in taken], ran_before=ran_before)

    def release_leases(self, user_ids: Sequence[str], owner: str, *, slot: int | None = None,
                       not_run: Sequence[str] = ()) -> None:
        """``release_lease`` for several users in one transaction, and the claims of slot
        ``slot`` that ``owner`` took for the users ``not_run`` given back with them (the
        keeper stopped before their cycles: another may run them). Not waiting for the
        disk: a release lost with the machine's power leaves the leases to expire, which
        only delays the next keeper (taking a lease waits for the disk)."""
        if not user_ids:
            return
        with self.session(durable=False) as session:
            session.execute(delete(LeaseRow).where(LeaseRow.user_id.in_(list(user_ids)), LeaseRow.owner == owner))
            if slot is not None and not_run:
                session.execute(delete(CycleClaimRow).where(
                    CycleClaimRow.user_id.in_(list(not_run)), CycleClaimRow.slot == slot,
                    CycleClaimRow.keeper_id == owner))

    def release_lease(self, user_id: str, owner: str) -> None:
        """Gives a user back (only if this owner holds it); not waiting for the disk, as
        ``release_leases``."""
        with self.session(durable=False) as session:
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


    # --------------------------------------------------------- control actions
    def add_control_action(self, row: ControlActionRow) -> ControlActionRow:
        """Records an operator's action (durable: the audit trail of a person's decision)."""
        with self.session() as session:
            session.add(row)
        return row

    def control_actions(self, user_id: str | None = None, limit: int | None = None) -> list[ControlActionRow]:
        """Operators' actions (of one user), newest first."""
        query = select(ControlActionRow).order_by(ControlActionRow.id.desc()).limit(limit)
        if user_id is not None:
            query = query.where(ControlActionRow.user_id == user_id)
        with self.session() as session:
            return list(session.scalars(query))

    def pending_exits(self, user_id: str) -> list[ControlActionRow]:
        """The user's exit requests not acted on yet, oldest first (a few at most)."""
        with self.session() as session:
            return list(session.scalars(_pending_exits(user_id)))

    def finish_control_action(self, action_id: int, outcome: str, trade_id: str | None, when: datetime) -> bool:
        """Marks a pending request done with what came of it; False if it was done before
        (another keeper acted on it first): a request acts once."""
        with self.session() as session:
            return bool(session.execute(update(ControlActionRow).where(
                ControlActionRow.id == action_id, ControlActionRow.status == PENDING).values(
                status=DONE, outcome=outcome[:300], trade_id=trade_id, done_at=when)).rowcount)


def _risk_rows(session: Session, user_id: str, span: timedelta | None, newest: int,
               not_before: datetime | None = None) -> RiskRows:
    """``Store.risk_state`` inside an open transaction; with ``not_before``, the trades within
    ``span`` are counted back from it rather than from the newest trade."""
    # Plain rows, not ORM objects: a week of an hourly trader's trades is 168 of them.
    columns = select(RiskTradeRow.id, RiskTradeRow.timestamp, RiskTradeRow.asset, RiskTradeRow.pnl_quote,
                     RiskTradeRow.success, RiskTradeRow.trade_id)
    mine = RiskTradeRow.user_id == user_id
    if span is None:
        trades = list(session.execute(columns.where(mine).order_by(RiskTradeRow.timestamp, RiskTradeRow.id)))
    else:
        last = list(session.execute(columns.where(mine).order_by(
            RiskTradeRow.timestamp.desc(), RiskTradeRow.id.desc()).limit(newest)))
        start = not_before if not_before is not None else last[0].timestamp - span if last else None
        recent = [] if start is None else list(session.execute(columns.where(mine, RiskTradeRow.timestamp >= start)))
        trades = sorted({row.id: row for row in (*last, *recent)}.values(), key=lambda row: (row.timestamp, row.id))
    locks = session.scalars(select(LockRow).where(LockRow.user_id.in_([user_id, GLOBAL_USER])))
    clears = session.scalars(select(ClearRow).where(ClearRow.user_id == user_id))
    peak = session.get(PeakRow, user_id)
    return RiskRows(trades, list(locks), {row.rule: row.cleared_at for row in clears},
                    None if peak is None else peak.peak_value_quote)


def _user_revision(session: Session, user_id: str) -> tuple[int, int]:
    """The writes counted to ``user_id``'s state and to the global locks (0: never written)."""
    found = {row.user_id: row.revision for row in session.connection().execute(_REVISIONS, {"user": user_id})}
    return found.get(user_id, 0), found.get(GLOBAL_USER, 0)


# Statements every cycle runs, built once (their parameters bound per call) and run on the
# session's connection: plain rows, without the ORM's layer around a statement.
_DECIDED = select(SignalRow.asset, SignalRow.strategy).where(
    SignalRow.user_id == bindparam("user"), SignalRow.asset.in_(bindparam("assets", expanding=True)),
    SignalRow.strategy.in_(bindparam("strategies", expanding=True)),
    SignalRow.bar_time >= bindparam("bar", type_=SignalRow.bar_time.type))
_REVISIONS = select(UserRevisionRow.user_id, UserRevisionRow.revision).where(
    UserRevisionRow.user_id.in_([bindparam("user"), GLOBAL_USER]))
_SIGNALS = SignalRow.__table__
_SETTLE_DECISION = update(_SIGNALS).where(  # an open decision to acted on, with its outcome
    _SIGNALS.c.user_id == bindparam("b_user"), _SIGNALS.c.asset == bindparam("b_asset"),
    _SIGNALS.c.strategy == bindparam("b_strategy"), _SIGNALS.c.bar_time == bindparam("b_bar"),
).values(acted=True, outcome=bindparam("b_outcome"))


def _bar_heads(session: Session, assets: Iterable[str], timeframe_seconds: int, before: datetime) -> BarHeads:
    """Per asset, the start of its newest bar before ``before`` and of its newest final one
    (from the feed's rounds or a price file, not folded from readings): two seeks down the
    bars' primary key from ``before`` (the second a few steps at most), one statement for
    every asset; the cost does not grow with the history."""
    assets = list(assets)
    if not assets:
        return BarHeads(newest={}, final={})
    found = list(session.connection().execute(_heads_statement(len(assets)), {
        "timeframe": timeframe_seconds, "before": before, **{f"asset_{index}": a for index, a in enumerate(assets)}}))
    return BarHeads(newest={asset: when for asset, when, _ in found if when is not None},
                    final={asset: when for asset, _, when in found if when is not None})


@functools.lru_cache(maxsize=16)
def _heads_statement(count: int):
    """The statement of ``_bar_heads`` for ``count`` assets, built once (its parameters bound per call)."""
    heads = []
    for index in range(count):
        asset = bindparam(f"asset_{index}", type_=BarRow.asset.type)
        scope = select(BarRow.bar_time).where(
            BarRow.asset == asset, BarRow.timeframe_seconds == bindparam("timeframe"),
            BarRow.bar_time < bindparam("before", type_=BarRow.bar_time.type)).order_by(BarRow.bar_time.desc()).limit(1)
        heads.append(select(asset, scope.scalar_subquery(),
                            scope.where(BarRow.source != BAR_FROM_READINGS).scalar_subquery()))
    return union_all(*heads)


def _pending_exits(user_id: str):
    """The query of a user's exit requests not acted on yet, oldest first."""
    return select(ControlActionRow).where(ControlActionRow.user_id == user_id,
                                          ControlActionRow.status == PENDING).order_by(ControlActionRow.id)


def _update_trade(session: Session, trade_id: str, positions: Iterable[PositionRow | None],
                  fields: dict[str, Any]) -> TradeRow:
    """Sets ``fields`` of one trade and merges its sleeves' ``positions`` in ``session``;
    the row as written (UPDATE ... RETURNING: no second read)."""
    fields["updated_at"] = now_utc()
    rows = list(session.scalars(update(TradeRow).where(TradeRow.trade_id == trade_id).values(**fields)
                                .returning(TradeRow)))
    if len(rows) != 1:
        raise KeyError(f"no trade {trade_id}")
    for position in positions:
        if position is not None:
            position.updated_at = fields["updated_at"]
            session.merge(position)
    return rows[0]
