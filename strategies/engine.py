"""One user's trading state machine, shared by the keeper and the user backtest.

Both run the same steps, in the same order, once per closed bar:

1. ``mark`` the user's value at the bar's oracle prices: the drawdown kill switch
   engages on it (a lock without an end: no trade, BUY or SELL, until a person clears it);
2. ``choose`` what each strategy's decision on the closed bar means for this user: a
   ``TradeIntent`` (side, sized amount) or a ``Blocked`` stop with its rule and reason,
   from the sleeve it holds, the vault balances, the user's on-chain limits and the risk
   rules;
3. book the trade once it is done: the sleeve (``Sleeve.buy`` / ``Sleeve.sell``) and the
   risk rules' ``TradeRecord`` follow it. The backtest calls ``record_fill`` /
   ``record_failure``; the keeper's journal books the same two things through the store
   (a position row and ``RiskManager.record_trade``), since they must survive a crash.

``mark`` and ``choose`` are called by both as they are; the keeper's risk manager keeps
the evaluator and the peak in the store around them.

The rules' clock is the bar clock: ``now`` is the end of the decided bar (the
backtester's fill bar), never a block timestamp or the wall clock, so the same bars give
the same decisions whatever second a trade was mined. Amounts are integer base units
of each token, as on-chain; values are in quote units at oracle USD prices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from strategies.base import Action
from strategies.exits import Protection
from strategies.risk import KILL_SWITCH, Lock, RiskEvaluator, RiskLimits, TradeRecord

BUY, SELL = "BUY", "SELL"
EXIT_PROTECTION = "exit_protection"
"""The rule of a BUY the user's own protective exit stops."""


@dataclass
class Sleeve:
    """What one strategy holds of one asset for one user (as the backtester's sleeve):
    a BUY spends quote tokens on the asset, a SELL sells what that sleeve bought, never
    the user's own deposits. Cost is the average cost of what it holds."""

    tokens: int = 0  # base units of the asset
    cost_quote: float = 0.0  # quote units paid for ``tokens``
    realised_quote: float = 0.0

    def buy(self, tokens: int, paid_quote: float) -> None:
        """Adds a BUY's tokens at what they cost."""
        self.tokens += tokens
        self.cost_quote += paid_quote

    def sell(self, tokens_sold: int, proceeds_quote: float) -> float:
        """Takes a SELL out at average cost; returns the profit it realised."""
        if self.tokens <= 0:
            return proceeds_quote
        share = min(tokens_sold / self.tokens, 1.0)
        cost = self.cost_quote * share
        self.tokens = max(self.tokens - tokens_sold, 0)
        self.cost_quote -= cost
        profit = proceeds_quote - cost
        self.realised_quote += profit
        return profit


@dataclass(frozen=True)
class UserLimits:
    """What the user set that changes what trades: the sizing and drawdown limit of the
    users file, and the on-chain limits of the Executor (per-trade maxima in base units,
    the minimum seconds between two trades)."""

    quote: str
    quote_amount: int | None  # base units of the quote per BUY, or
    vault_share: float | None  # the share of the quote balance per BUY
    max_per_trade: Mapping[str, int]
    min_trade_interval_seconds: int = 0
    kill_switch_drawdown: float | None = None
    buy_allowed: frozenset[str] | None = None  # tokens the user lets keepers buy for them (None: any)
    min_trade_value_usd: float = 0.0  # the Executor refuses a trade worth less
    protections: Mapping[str, Protection] = field(default_factory=dict)  # token -> the user's protective exit


@dataclass(frozen=True)
class TradeIntent:
    """A decision the user's limits and rules let through, sized."""

    asset: str
    strategy: str
    side: str
    token_in: str
    token_out: str
    amount_in: int


@dataclass(frozen=True)
class Blocked:
    """A decision a rule stopped: which, and why (recorded, never silent)."""

    asset: str
    strategy: str
    side: str
    rule: str
    reason: str


@dataclass
class UserState:
    """Everything the machine remembers of one user between bars."""

    evaluator: RiskEvaluator
    sleeves: dict[tuple[str, str], Sleeve] = field(default_factory=dict)
    peak_quote: float | None = None

    @classmethod
    def fresh(cls, limits: RiskLimits) -> UserState:
        """A user with no history."""
        return cls(evaluator=RiskEvaluator(limits.rules()))

    def holding(self, asset: str, strategy: str) -> int:
        """Base units the sleeve of ``(asset, strategy)`` holds."""
        sleeve = self.sleeves.get((asset, strategy))
        return sleeve.tokens if sleeve else 0


def drawdown_reason(value_quote: float, peak_quote: float, limit: float) -> str | None:
    """Why the kill switch engages at ``value_quote`` (None: it does not): the value
    fell ``limit`` or more below its peak."""
    drawdown = 1 - value_quote / peak_quote
    if drawdown < limit:
        return None
    return f"vault value {value_quote:,.2f} is {drawdown:.1%} below its peak {peak_quote:,.2f} (limit {limit:.0%})"


class DrawdownLimit(Protocol):
    """Whatever carries the user's drawdown limit (``UserLimits``, the keeper's risk profile)."""

    kill_switch_drawdown: float | None


def mark(state: UserState, limits: DrawdownLimit, value_quote: float, now: datetime) -> Lock | None:
    """Raises the peak to ``value_quote`` and engages the drawdown kill switch when the
    value fell far enough below it; returns the lock it engaged, if any."""
    if limits.kill_switch_drawdown is None or value_quote <= 0:
        return None
    if state.peak_quote is None or value_quote > state.peak_quote:
        state.peak_quote = value_quote
    reason = drawdown_reason(value_quote, state.peak_quote, limits.kill_switch_drawdown)
    if reason is None or any(lock.rule == KILL_SWITCH for lock in state.evaluator.locks):
        return None
    return state.evaluator.engage_kill_switch(now, reason)


def choose(state: UserState, limits: UserLimits, asset: str, strategy: str, action: Action,
           balances: Mapping[str, int], now: datetime, *, chain_time: int, last_trade_at: int,
           value_usd: Callable[[str, int], float] | None = None,
           asset_price: int | None = None) -> TradeIntent | Blocked | None:
    """What one strategy's decision on the bar ending at ``now`` becomes: a BUY when its
    sleeve is flat, a SELL of what it holds, nothing otherwise (None). BUY sizes from the
    user's sizing; both are capped by the vault balance and the on-chain per-trade
    maximum. ``chain_time`` and ``last_trade_at`` (seconds) are the Executor's clock for
    its own minimum trade interval; the risk rules read only ``now``. ``value_usd(token,
    amount)`` values a trade at the oracle for the user's minimum trade value, and
    ``asset_price`` (USD, 18 decimals) is the oracle price the Executor checks a BUY
    against the user's protective exit with."""
    holding = state.holding(asset, strategy)
    quote = limits.quote
    if action == Action.BUY and holding == 0:
        side, token_in, token_out = BUY, quote, asset
        balance = balances[quote]
        wanted = limits.quote_amount if limits.quote_amount is not None else int(balance * limits.vault_share)
        amount = min(wanted, balance, limits.max_per_trade[quote])
    elif action == Action.SELL and holding > 0:
        side, token_in, token_out = SELL, asset, quote
        amount = min(holding, balances[asset], limits.max_per_trade[asset])
    else:
        return None
    stop = _onchain_stop(limits, token_in, token_out, amount, chain_time, last_trade_at, value_usd)
    protection = limits.protections.get(asset)
    if stop is None and side == BUY and protection is not None and asset_price is not None \
            and protection.refuses_buy(asset_price):
        stop = EXIT_PROTECTION, (f"the user's stop-loss or take-profit of {asset} holds at {asset_price / 1e18:,.2f} "
                                 "USD: the Executor refuses the BUY (ExecutorBuyTriggersExit)")
    if stop is None:
        lock = state.evaluator.blocking_lock(now, asset, side == BUY)
        stop = None if lock is None else (lock.rule, lock.reason)
    if stop is not None:
        return Blocked(asset, strategy, side, *stop)
    return TradeIntent(asset, strategy, side, token_in, token_out, amount)


def _onchain_stop(limits: UserLimits, token_in: str, token_out: str, amount: int, chain_time: int,
                  last_trade_at: int, value_usd: Callable[[str, int], float] | None) -> tuple[str, str] | None:
    """The user's on-chain settings that would make the Executor refuse the trade."""
    if limits.max_per_trade[token_in] == 0:
        return "no_allowance", f"the user's on-chain maximum per trade for {token_in} is 0"
    if token_out != limits.quote and limits.buy_allowed is not None and token_out not in limits.buy_allowed:
        return "buy_not_allowed", f"the user has not allowed keepers to buy {token_out} (Executor.setBuyAllowed)"
    if amount <= 0:
        return "no_balance", f"no {token_in} in the vault to trade"
    worth = value_usd(token_in, amount) if limits.min_trade_value_usd and value_usd is not None else None
    if worth is not None and worth < limits.min_trade_value_usd:
        return "below_min_trade_value", (
            f"{worth:.2f} USD is below the user's minimum trade value {limits.min_trade_value_usd:.2f} USD")
    interval = limits.min_trade_interval_seconds
    if interval and chain_time < last_trade_at + interval:
        return "trade_interval", (
            f"the user allows one trade per {interval} s; next at {last_trade_at + interval}")
    return None


LOSS_WINDOW_SECONDS = 86_400  # ExecutorLossBudget.LOSS_WINDOW


@dataclass
class LossBudget:
    """The Executor's daily loss budget of one user, counted as ExecutorLossBudget.sol counts
    it: each fill's loss against the oracle is added, the sum may reach half the budget and
    drains at half the budget per day; a trade that would pass half is refused (reverts).
    The keeper needs no copy (the chain counts, and its preflight sees the revert); the
    user backtest counts with this one, on the bar clock."""

    daily_usd: float
    spent_usd: float = 0.0
    updated_at: int = 0  # unix seconds of the last count

    def spent_at(self, when: int) -> float:
        """The losses still counted at ``when``, after draining."""
        drained = self.daily_usd / 2 * max(when - self.updated_at, 0) / LOSS_WINDOW_SECONDS
        return max(self.spent_usd - drained, 0.0)

    def refusal(self, loss_usd: float, when: int) -> str | None:
        """Why the Executor refuses a fill losing ``loss_usd`` at ``when`` (None: it fits)."""
        if loss_usd <= 0:
            return None
        spent = self.spent_at(when)
        if spent + loss_usd <= self.daily_usd / 2:
            return None
        return (f"loses {loss_usd:.2f} USD against the oracle; {spent:.2f} of the daily loss budget's "
                f"{self.daily_usd / 2:.2f} USD at once is counted (ExecutorLossBudgetExceeded)")

    def count(self, loss_usd: float, when: int) -> None:
        """Adds a fill's loss (a gain counts nothing)."""
        if loss_usd > 0:
            self.spent_usd, self.updated_at = self.spent_at(when) + loss_usd, when


def loss_against_oracle(value_in_usd: float, oracle_out: float, amount_out: int) -> float:
    """What a fill of ``amount_out`` lost against ``oracle_out`` (the output at oracle prices)
    of an input worth ``value_in_usd``, in USD, as the Executor counts it."""
    if amount_out >= oracle_out:
        return 0.0
    return value_in_usd * (oracle_out - amount_out) / oracle_out


def record_fill(state: UserState, intent: TradeIntent, amount_in: int, amount_out: int, quote_decimals: int,
                now: datetime) -> tuple[float | None, list[Lock]]:
    """Books a filled trade into its sleeve and the risk record at the bar clock ``now``;
    returns (the profit a SELL realised, None for a BUY; the locks the rules imposed)."""
    sleeve = state.sleeves.setdefault((intent.asset, intent.strategy), Sleeve())
    if intent.side == BUY:
        sleeve.buy(amount_out, amount_in / 10**quote_decimals)
        pnl = None
    else:
        pnl = sleeve.sell(amount_in, amount_out / 10**quote_decimals)
    return pnl, state.evaluator.record(TradeRecord(now, intent.asset, pnl, True))


def sell_sleeves(sleeves: Mapping[tuple[str, str], Sleeve], asset: str, amount_in: int,
                 proceeds_quote: float) -> tuple[float | None, list[tuple[str, str]]]:
    """Books a protective exit, which sold the user's whole balance ``amount_in`` of ``asset``
    for ``proceeds_quote``: every strategy's sleeve of it is sold out, each for its share of
    the proceeds by the tokens it held (the rest of the balance was the user's own);
    returns (the profit the sleeves realised, None if none held any; the sleeves booked)."""
    held = [(key, sleeve) for key, sleeve in sleeves.items() if key[0] == asset and sleeve.tokens > 0]
    if not held or amount_in <= 0:
        return None, []
    # More held by the sleeves than was sold (the user withdrew some): they share what was sold.
    whole = max(amount_in, sum(sleeve.tokens for _, sleeve in held))
    profit = 0.0
    for _, sleeve in held:
        profit += sleeve.sell(sleeve.tokens, proceeds_quote * sleeve.tokens / whole)
    return profit, [key for key, _ in held]


def record_exit(state: UserState, asset: str, amount_in: int, amount_out: int, quote_decimals: int,
                now: datetime) -> tuple[float | None, list[Lock]]:
    """Books a protective exit into the sleeves and the risk record (a trade like any
    other) at the bar clock ``now``; returns (the profit the sleeves realised; the locks)."""
    pnl, _ = sell_sleeves(state.sleeves, asset, amount_in, amount_out / 10**quote_decimals)
    return pnl, state.evaluator.record(TradeRecord(now, asset, pnl, True))


def record_failure(state: UserState, asset: str, now: datetime) -> list[Lock]:
    """Books a trade that did not execute (refused before sending, or reverted)."""
    return state.evaluator.record(TradeRecord(now, asset, None, False))
