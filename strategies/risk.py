"""Risk rules shared by the live keeper and the backtester.

Each rule is a small class in the style of freqtrade's protections: a ``name``, a
one-line ``description`` and ``check(now, trades) -> Lock | None``. A rule reads the
clock only through ``now`` and the history only through ``trades``, so a test moves
time by passing a different ``now``.

Scope and effect, exactly:

- A rule runs after every recorded trade, at that trade's time, over the trade
  history (only the trades of that trade's asset when the rule is per-asset).
- A lock with an end (``until``) stops new positions (BUY) on its asset, or on every
  asset when it is global, while ``now < until``. It never stops the exit (SELL) of an
  open position: a loss limit that kept a losing position open would defeat itself.
- A lock without an end is a kill switch: it stops every trade, BUY and SELL, on
  every asset, until it is cleared by hand.

``RiskEvaluator`` is the in-memory state the backtester uses. The live keeper
persists the same ``TradeRecord`` and ``Lock`` values and calls the same rules.
"""

from __future__ import annotations

import bisect
import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

GLOBAL = "*"
"""The asset key of a lock that covers every asset."""


@dataclass(frozen=True)
class TradeRecord:
    """One trade attempt as the risk rules see it.

    ``pnl_quote`` is the realised profit (negative: loss) in quote units, or None
    when the trade realises nothing (it opens a position). ``success`` is False when
    the execution failed (nothing was swapped).
    """

    timestamp: datetime
    asset: str
    pnl_quote: float | None
    success: bool = True


@dataclass(frozen=True)
class Lock:
    """A rule's verdict: no new positions until ``until`` (None: a kill switch).

    Rules return ``Lock(until, reason)``; the evaluator fills in ``rule`` and
    ``asset`` (``GLOBAL`` for every asset).
    """

    until: datetime | None
    reason: str
    rule: str = ""
    asset: str = GLOBAL

    @property
    def is_kill_switch(self) -> bool:
        """True for a lock with no end."""
        return self.until is None

    def blocks(self, now: datetime, asset: str, opening: bool) -> bool:
        """Whether this lock stops a trade on ``asset`` at ``now``.

        ``opening`` is True for a BUY (opens a position), False for a SELL.
        """
        if self.asset not in (GLOBAL, asset):
            return False
        if self.until is None:
            return True
        return opening and now < self.until


class RiskRule(ABC):
    """A pure risk rule: ``check(now, trades)`` returns a lock or None."""

    name: ClassVar[str]
    description: ClassVar[str]
    per_asset: ClassVar[bool] = False

    @abstractmethod
    def check(self, now: datetime, trades: Sequence[TradeRecord]) -> Lock | None:
        """The lock this rule imposes at ``now`` given ``trades`` (in time order, oldest first)."""


class Cooldown(RiskRule):
    """No new position on an asset within ``period`` after its last trade."""

    name = "cooldown"
    description = "no new position on an asset until a cooldown after its last trade"
    per_asset = True

    def __init__(self, period: timedelta) -> None:
        self.period = period

    def check(self, now: datetime, trades: Sequence[TradeRecord]) -> Lock | None:
        last = next((t for t in reversed(trades) if t.success), None)
        if last is None or now >= last.timestamp + self.period:
            return None
        return Lock(last.timestamp + self.period, f"cooldown of {self.period} after the trade at {last.timestamp}")


class MaxTradesPerWindow(RiskRule):
    """At most ``max_trades`` successful trades in any trailing ``window``."""

    name = "max_trades"
    description = "at most N trades in any trailing time window (overtrading guard)"

    def __init__(self, max_trades: int, window: timedelta) -> None:
        self.max_trades = max_trades
        self.window = window

    def check(self, now: datetime, trades: Sequence[TradeRecord]) -> Lock | None:
        recent = [t for t in _newest_first(trades, now, now - self.window) if t.success]
        if len(recent) < self.max_trades:
            return None
        # The window frees a slot when the oldest of the last max_trades trades leaves it.
        until = recent[self.max_trades - 1].timestamp + self.window
        return Lock(until, f"{len(recent)} trades in the last {self.window} (max {self.max_trades})")


class DailyLossLimit(RiskRule):
    """No new position for the rest of the UTC day once its realised loss reaches a limit."""

    name = "daily_loss"
    description = "no new position for the rest of the UTC day after losing a set quote amount"

    def __init__(self, max_loss_quote: float) -> None:
        self.max_loss_quote = max_loss_quote

    def check(self, now: datetime, trades: Sequence[TradeRecord]) -> Lock | None:
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        # A trade exactly at midnight belongs to the new day.
        today = _newest_first(trades, now, day_start - timedelta.resolution)
        pnl = sum(t.pnl_quote for t in today if t.success and t.pnl_quote is not None)
        if pnl > -self.max_loss_quote:
            return None
        return Lock(
            day_start + timedelta(days=1),
            f"lost {-pnl:.2f} quote today (limit {self.max_loss_quote:.2f})",
        )


class LossStreak(RiskRule):
    """No new position for ``pause`` after ``max_losses`` losing closes in a row."""

    name = "loss_streak"
    description = "pause new positions after N losing trades in a row"

    def __init__(self, max_losses: int, pause: timedelta) -> None:
        self.max_losses = max_losses
        self.pause = pause

    def check(self, now: datetime, trades: Sequence[TradeRecord]) -> Lock | None:
        closes = (t for t in reversed(trades) if t.success and t.pnl_quote is not None)
        streak = list(itertools.islice(closes, self.max_losses))
        if len(streak) < self.max_losses or any(t.pnl_quote >= 0 for t in streak):
            return None
        until = streak[0].timestamp + self.pause
        if now >= until:
            return None
        return Lock(until, f"{self.max_losses} losing trades in a row")


class ConsecutiveFailures(RiskRule):
    """Kill switch after ``max_failures`` failed executions in a row."""

    name = "consecutive_failures"
    description = "kill switch after N failed executions in a row (cleared by hand)"

    def __init__(self, max_failures: int) -> None:
        self.max_failures = max_failures

    def check(self, now: datetime, trades: Sequence[TradeRecord]) -> Lock | None:
        last = trades[-self.max_failures :]
        if len(last) < self.max_failures or any(t.success for t in last):
            return None
        return Lock(None, f"{self.max_failures} failed executions in a row")


def _newest_first(trades: Sequence[TradeRecord], now: datetime, after: datetime) -> Iterator[TradeRecord]:
    """Trades with ``after < timestamp <= now``, newest first.

    ``trades`` are oldest first, so the scan stops at the first one not after ``after``:
    a check costs what its window holds, not the whole history.
    """
    for trade in reversed(trades):
        if trade.timestamp <= after:
            return
        if trade.timestamp <= now:
            yield trade


class RiskLimits(BaseModel):
    """The settings of the standard rule set; a limit set to None turns its rule off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Durations must be positive: a negative one would silently turn its rule into nonsense.
    cooldown: timedelta | None = Field(default=timedelta(days=1), gt=timedelta(0))
    max_trades: int | None = Field(default=10, gt=0)
    max_trades_window: timedelta = Field(default=timedelta(days=7), gt=timedelta(0))
    max_daily_loss_quote: float | None = Field(default=500.0, gt=0)
    max_losses: int | None = Field(default=3, gt=0)
    loss_pause: timedelta = Field(default=timedelta(days=2), gt=timedelta(0))
    max_failures: int | None = Field(default=3, gt=0)

    def memory(self) -> tuple[timedelta, int]:
        """How much trade history these rules can ever see: (a span before the newest
        trade, a number of newest trades). An older trade never changes a lock: a
        cooldown, window, pause or UTC day is shorter than the span, and a streak or run
        of failures counts only the newest trades. A keeper restores this much, however
        long the user's history."""
        spans = [self.max_trades_window, self.loss_pause, timedelta(days=2)]  # a UTC day: now's and the one before
        if self.cooldown is not None:
            spans.append(self.cooldown)
        counts = [self.max_losses or 0, self.max_failures or 0, self.max_trades or 0, 1]
        return max(spans), max(counts)

    def rules(self) -> list[RiskRule]:
        """The rules these limits turn on, in the order their locks are reported."""
        rules: list[RiskRule] = []
        if self.cooldown is not None:
            rules.append(Cooldown(self.cooldown))
        if self.max_trades is not None:
            rules.append(MaxTradesPerWindow(self.max_trades, self.max_trades_window))
        if self.max_daily_loss_quote is not None:
            rules.append(DailyLossLimit(self.max_daily_loss_quote))
        if self.max_losses is not None:
            rules.append(LossStreak(self.max_losses, self.loss_pause))
        if self.max_failures is not None:
            rules.append(ConsecutiveFailures(self.max_failures))
        return rules


KILL_SWITCH = "kill_switch"
"""The rule name of a kill switch engaged by hand."""


class RiskEvaluator:
    """In-memory trade history and locks, evaluated with a list of rules.

    Not thread-safe; one evaluator per user (the backtester: one per run).
    """

    def __init__(
        self,
        rules: Sequence[RiskRule],
        trades: Sequence[TradeRecord] = (),
        locks: Sequence[Lock] = (),
        cleared_at: Mapping[str, datetime] | None = None,
    ) -> None:
        """Start empty, or restore persisted state: ``trades`` (oldest first) are taken
        as history without running the rules again; ``locks`` and ``cleared_at`` (rule
        name -> time of its last clear by hand) as they were saved."""
        self.rules = list(rules)
        self.trades: list[TradeRecord] = list(trades)
        self._by_asset: dict[str, list[TradeRecord]] = {}
        for trade in self.trades:
            self._by_asset.setdefault(trade.asset, []).append(trade)
        self._locks: dict[tuple[str, str], Lock] = {(lock.rule, lock.asset): lock for lock in locks}
        self.cleared_at: dict[str, datetime] = dict(cleared_at or {})

    @property
    def locks(self) -> list[Lock]:
        """Every lock imposed so far that has not been cleared (expired ones included)."""
        return list(self._locks.values())

    def record(self, trade: TradeRecord) -> list[Lock]:
        """Add a trade (not older than the last one) and run every rule at its time.

        Returns the locks it caused.
        """
        if self.trades and trade.timestamp < self.trades[-1].timestamp:
            raise ValueError(f"trade at {trade.timestamp} is older than the last one ({self.trades[-1].timestamp})")
        self.trades.append(trade)
        self._by_asset.setdefault(trade.asset, []).append(trade)
        new: list[Lock] = []
        for rule in self.rules:
            lock = rule.check(trade.timestamp, self._history(rule, trade.asset))
            if lock is not None:
                asset = trade.asset if rule.per_asset else GLOBAL
                lock = replace(lock, rule=rule.name, asset=asset)
                self._locks[(rule.name, asset)] = lock
                new.append(lock)
        return new

    def blocking_lock(self, now: datetime, asset: str, opening: bool) -> Lock | None:
        """The lock that stops this trade, or None: a kill switch first, then in the order of
        the rules (then by asset), so the answer never depends on the order the locks were
        imposed or restored in (a store returns them in its own order)."""
        active = [lock for lock in self._locks.values() if lock.blocks(now, asset, opening)]
        rank = {rule.name: index for index, rule in enumerate(self.rules)}
        active.sort(key=lambda lock: (not lock.is_kill_switch, rank.get(lock.rule, len(rank)), lock.rule, lock.asset))
        return active[0] if active else None

    def engage_kill_switch(self, now: datetime, reason: str) -> Lock:
        """Stop all trading until ``clear(KILL_SWITCH, ...)``."""
        lock = Lock(None, f"{reason} (engaged {now.isoformat()})", KILL_SWITCH, GLOBAL)
        self._locks[(KILL_SWITCH, GLOBAL)] = lock
        return lock

    def clear(self, rule_name: str, now: datetime) -> None:
        """Lift a rule's locks by hand; the rule then ignores trades up to ``now``."""
        self._locks = {key: lock for key, lock in self._locks.items() if key[0] != rule_name}
        self.cleared_at[rule_name] = now

    def _history(self, rule: RiskRule, asset: str) -> Sequence[TradeRecord]:
        history = self._by_asset[asset] if rule.per_asset else self.trades
        cleared = self.cleared_at.get(rule.name)
        if cleared is None:
            return history
        return history[bisect.bisect_right(history, cleared, key=lambda t: t.timestamp) :]
