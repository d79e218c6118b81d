"""A user's protective exits, as the Executor enforces them (ExecutorExits.sol), in Python.

One user's protection of one token: a stop-loss price, a take-profit price and a
trailing distance below the highest price since the protection's start, each optional.
When one holds at the current oracle price, the user's whole vault balance of the token
is sold for the quote token (``Executor.executeExit``), once: the exit spends the
protection until its next start (the user sets it again, or a keeper buys the token
for the user). The keeper, the user backtest and the referee decide with these rules,
so they agree with the contract and with each other.

Prices are integers, USD per whole token with 18 decimals, as the Executor compares
them (a feed's answer scaled by its decimals): no float rounding can move a trigger.

The trailing stop's high-water mark is a feed round the caller names (the contract reads
it); ``ExitWatch`` keeps the highest round seen since the start, from whatever rounds its
owner sees (the keeper: each cycle's reading; the backtest: each bar's close). A round
it did not see only makes the stop trigger later, never sooner.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

PRICE_DECIMALS = 18
MAX_BPS = 10_000
EXIT_STRATEGY = "exit"
"""The strategy name of an exit's trade: it sells every strategy's sleeve of the token."""


class ExitTrigger(IntEnum):
    """What made an exit trigger, numbered as the contract's enum."""

    NONE = 0
    STOP_LOSS = 1
    TAKE_PROFIT = 2
    TRAILING_STOP = 3

    @property
    def label(self) -> str:
        """The trigger's name in reports: stop_loss, take_profit, trailing_stop."""
        return self.name.lower()


def price_e18(answer: int, feed_decimals: int) -> int:
    """A feed answer as the Executor scales it: USD per whole token, 18 decimals."""
    return answer * 10 ** (PRICE_DECIMALS - feed_decimals)


@dataclass(frozen=True)
class Protection:
    """One user's protection of one token (0: that trigger is off), as ``setProtection`` stores it."""

    stop_loss_e18: int = 0
    take_profit_e18: int = 0
    trailing_bps: int = 0
    bounty_bps: int = 0
    grace_seconds: int = 0

    @property
    def active(self) -> bool:
        """Some trigger is set."""
        return bool(self.stop_loss_e18 or self.take_profit_e18 or self.trailing_bps)

    def trigger(self, price: int, high: int | None) -> ExitTrigger:
        """Which trigger holds at ``price``, with ``high`` the trailing stop's high-water price
        (None: no round since the start to name): the contract's order and exact integers."""
        if self.stop_loss_e18 and price <= self.stop_loss_e18:
            return ExitTrigger.STOP_LOSS
        if self.take_profit_e18 and price >= self.take_profit_e18:
            return ExitTrigger.TAKE_PROFIT
        if self.trailing_bps and high is not None and price * MAX_BPS <= high * (MAX_BPS - self.trailing_bps):
            return ExitTrigger.TRAILING_STOP
        return ExitTrigger.NONE

    def refuses_buy(self, price: int) -> bool:
        """Whether the Executor refuses a keeper's BUY of the token at ``price``
        (ExecutorBuyTriggersExit): its stop-loss or take-profit holds there."""
        return bool((self.stop_loss_e18 and price <= self.stop_loss_e18)
                    or (self.take_profit_e18 and price >= self.take_profit_e18))


@dataclass
class ExitWatch:
    """The state of one protection between cycles or bars: when it started (unix seconds;
    None: spent by an exit, until the next start) and the highest round seen since then."""

    started_at: int | None
    high_round_id: int | None = None
    high_price: int | None = None

    def restart(self, started_at: int) -> None:
        """The protection starts again (set, or a keeper bought the token): unspent, no high yet."""
        self.started_at, self.high_round_id, self.high_price = started_at, None, None

    def observe(self, round_id: int, price: int, updated_at: int) -> bool:
        """Takes a round as the high-water mark if it is after the start and higher than the
        mark; returns whether it did."""
        if self.started_at is None or updated_at < self.started_at:
            return False
        if self.high_price is not None and price <= self.high_price:
            return False
        self.high_round_id, self.high_price = round_id, price
        return True

    def due(self, protection: Protection, price: int) -> ExitTrigger:
        """The trigger that holds at ``price`` now (NONE when spent or nothing holds)."""
        if self.started_at is None or not protection.active:
            return ExitTrigger.NONE
        return protection.trigger(price, self.high_price)
