"""The live risk manager: the shared rules of strategies/risk.py over state in the store.

Each user's trades (as the rules see them), locks and clears are rows in the store;
``RiskManager`` restores them into a ``RiskEvaluator`` when it is built, so a restart
changes nothing. Beyond the shared rules it keeps a drawdown kill switch (vault value
against its peak) and the global kill switch. A kill switch stays on until a person
clears it (``ape run keeper resume``). Every stopped trade is recorded with its reason.
Times are chain (block) times, so a replay's locks expire in the replay's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from keepers.persistence.store import RiskRows, Store
from keepers.persistence.tables import GLOBAL_USER, LockRow, RiskTradeRow
from keepers.settings.keeper import RiskProfile, UserConfig
from strategies.engine import UserState, mark
from strategies.risk import GLOBAL, KILL_SWITCH, Lock, RiskEvaluator, TradeRecord

GLOBAL_KILL_SWITCH = "global_kill_switch"
"""The rule name of the kill switch that stops every user."""


@dataclass(frozen=True)
class RiskDecision:
    """Whether a trade may go ahead and, if not, which rule stopped it and why."""

    allowed: bool
    rule: str = ""
    reason: str = ""


@dataclass(frozen=True)
class RiskEntry:
    """A trade the rules took in (``RiskManager.note_trade``): its row, the rows of the locks
    it caused, and those locks."""

    row: RiskTradeRow
    lock_rows: list[LockRow]
    new_locks: list[Lock]


class RiskManager:
    """One user's risk state, persisted in ``store``."""

    def __init__(self, store: Store, user_id: str, limits: RiskProfile, rows: RiskRows | None = None) -> None:
        """Restores the evaluator (and the vault-value peak) from ``rows`` if the caller read
        them already (a cycle reads them with the rest of the user), else from the store."""
        self.store = store
        self.user_id = user_id
        self.limits = limits
        self._load(rows or store.risk_state(user_id, *limits.memory()))

    def _load(self, rows: RiskRows) -> None:
        trade_rows, lock_rows, clears, self.peak = rows
        trades = [
            TradeRecord(timestamp=row.timestamp, asset=row.asset, pnl_quote=row.pnl_quote, success=row.success)
            for row in trade_rows
        ]
        locks = [Lock(until=row.until, reason=row.reason, rule=row.rule, asset=row.asset) for row in lock_rows]
        self.evaluator = RiskEvaluator(self.limits.rules(), trades, locks, clears)

    def can_trade(self, asset: str, opening: bool, now: datetime) -> RiskDecision:
        """Whether a BUY (``opening``) or SELL of ``asset`` may go ahead at ``now``."""
        lock = self.evaluator.blocking_lock(now, asset, opening)
        if lock is None:
            return RiskDecision(True)
        return RiskDecision(False, lock.rule, lock.reason)

    def record_trade(self, record: TradeRecord, trade_id: str) -> list[Lock]:
        """Adds an executed (or failed) trade, runs the rules, persists both; returns new locks.

        A trade id already recorded (a restart replaying its reconcile) changes nothing.
        """
        entry = self.note_trade(record, trade_id)
        return self.recorded(entry, self.store.add_risk_trade(entry.row, entry.lock_rows))

    def note_trade(self, record: TradeRecord, trade_id: str) -> RiskEntry:
        """Runs the rules on a trade in memory and returns the rows that persist it; whoever
        stores them (``Store.add_risk_trade``, or ``Store.settle_trade`` with the trade's own
        row) tells ``recorded`` whether they were new."""
        if self.evaluator.trades and record.timestamp < self.evaluator.trades[-1].timestamp:
            record = TradeRecord(self.evaluator.trades[-1].timestamp, record.asset, record.pnl_quote, record.success)
        row = RiskTradeRow(user_id=self.user_id, timestamp=record.timestamp, asset=record.asset,
                           pnl_quote=record.pnl_quote, success=record.success, trade_id=trade_id)
        new = self.evaluator.record(record)
        return RiskEntry(row, [self._lock_row(lock, record.timestamp) for lock in new], new)

    def recorded(self, entry: RiskEntry, stored: bool) -> list[Lock]:
        """The locks a noted trade caused, once stored; a trade id recorded before (not
        ``stored``) is undone by reading the stored state back."""
        if stored:
            return entry.new_locks
        self._load(self.store.risk_state(self.user_id, *self.limits.memory()))
        return []

    def block(self, asset: str, rule: str, reason: str, now: datetime) -> None:
        """Records that a trade on ``asset`` was stopped by ``rule``."""
        self.store.add_risk_event(self.user_id, asset, rule, reason, now)

    def check_drawdown(self, value_quote: float, now: datetime) -> Lock | None:
        """The user engine's ``mark`` over the stored state: raises the stored peak (written
        only when it rises) and engages the kill switch when the vault value fell
        ``kill_switch_drawdown`` below it; returns the lock it engaged, if any."""
        state = UserState(evaluator=self.evaluator, peak_quote=self.peak)
        lock = mark(state, self.limits, value_quote, now)
        if state.peak_quote is not None and (self.peak is None or state.peak_quote > self.peak):
            self.peak = self.store.raise_peak(self.user_id, state.peak_quote, now)
        if lock is not None:
            self.store.save_lock(self._lock_row(lock, now))
        return lock

    def engage_kill_switch(self, reason: str, now: datetime) -> Lock:
        """Stops every trade of this user until a person clears it."""
        lock = self.evaluator.engage_kill_switch(now, reason)
        self.store.save_lock(self._lock_row(lock, now))
        return lock

    def _lock_row(self, lock: Lock, now: datetime) -> LockRow:
        return LockRow(user_id=self.user_id, rule=lock.rule, asset=lock.asset, until=lock.until,
                       reason=lock.reason[:500], created_at=now)


def engage_global_kill_switch(store: Store, reason: str, now: datetime) -> None:
    """Stops every user's trades until a person clears it."""
    store.save_lock(LockRow(user_id=GLOBAL_USER, rule=GLOBAL_KILL_SWITCH, asset=GLOBAL,
                            until=None, reason=f"{reason} (engaged {now.isoformat()})", created_at=now))


def clear(store: Store, user_id: str, rule: str, now: datetime) -> int:
    """Lifts ``rule``'s locks of ``user_id`` (GLOBAL_USER for the global kill switch) by
    hand; returns how many were lifted. Clearing a user's kill switch also restarts the
    drawdown reference from the current value."""
    removed = store.clear_rule(user_id, rule, now)
    if rule == KILL_SWITCH and user_id != GLOBAL_USER:
        store.reset_peak(user_id)
    return removed


def kill(store: Store, users: Sequence[UserConfig], reason: str, now: datetime, *, every_user: bool) -> list[str]:
    """Engages the kill switch of each of ``users``, or the global one (``every_user``);
    returns one line per switch engaged, for the operator."""
    if every_user:
        engage_global_kill_switch(store, reason, now)
        return ["Global kill switch engaged: no user trades until `ape run keeper resume --all`."]
    for user in users:
        RiskManager(store, user.id, user.risk).engage_kill_switch(reason, now)
    return [f"{user.id}: kill switch engaged." for user in users]


def resume(store: Store, users: Sequence[UserConfig], rule: str | None, now: datetime, *,
           every_user: bool) -> list[str]:
    """Clears ``rule``'s locks (default: the kill switch) of each of ``users``, or the
    global kill switch (``every_user``): a person's decision; one line per target."""
    targets = [GLOBAL_USER] if every_user else [user.id for user in users]
    rule_name = rule or (GLOBAL_KILL_SWITCH if every_user else KILL_SWITCH)
    lines = []
    for target in targets:
        removed = clear(store, target, rule_name, now)
        lines.append(f"{'all users' if target == GLOBAL_USER else target}: cleared {removed} {rule_name} lock(s).")
    return lines
