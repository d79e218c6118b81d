"""The backtest of one user's settings: the keeper's state machine (strategies.engine)
run bar by bar over recorded closes, with the user's vault balances, sizing, on-chain
per-trade maxima, risk rules and drawdown kill switch, filled through a constant-product
pool at each bar's close.

The timeline is the replay's and the keeper's: at bar ``i`` the market is at close ``i``
(each feed's new round); the user's value is marked at those prices (the kill switch);
then the user's protective exits (strategies.exits) go first: for each token with a
live protection, close ``i`` is offered to the trailing stop's high-water mark, and a
trigger that holds while the user holds the token sells the whole balance of it through bar ``i``'s pool,
as ``Executor.executeExit`` does (the oracle floor, the loss counted but never refused
by the loss budget, no risk rule in the way: the exit is the user's own order). Then
each strategy's decision on the closed bar ``i - 1`` is chosen and filled at bar ``i``'s
pool; a BUY where the stop-loss or take-profit holds is stopped as the Executor refuses
it, and a BUY that fills starts the token's protection again from the next round. The
rules' clock is the bar clock: bar ``i``'s open time, the end of the decided bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd

from strategies.base import Action, Strategy
from strategies.engine import (
    BUY,
    SELL,
    LossBudget,
    TradeIntent,
    UserLimits,
    UserState,
    choose,
    loss_against_oracle,
    mark,
    record_exit,
    record_failure,
    record_fill,
)
from strategies.exits import EXIT_STRATEGY, ExitTrigger, ExitWatch, price_e18
from strategies.risk import RiskLimits

FEE_BASE, INPUT_AFTER_FEE = 1000, 997  # Uniswap V2: 997/1000 of every input counts
MAX_BPS = 10_000


@dataclass(frozen=True)
class UserBacktestSetup:
    """Who the user is, as the keeper sees them: tokens in the keeper's order, each
    token's strategies in order, limits, risk rules, starting vault balances."""

    tokens: Sequence[str]
    strategies: Mapping[str, Sequence[Strategy]]
    limits: UserLimits
    risk: RiskLimits
    balances: Mapping[str, int]  # base units by symbol, the quote's included
    decimals: Mapping[str, int]
    max_slippage_bps: int  # the Executor's oracle floor: the user's own slippage limit
    daily_loss_budget_usd: float  # the Executor's loss budget (0: no losing fill executes)


@dataclass(frozen=True)
class UserBacktestResult:
    """Every fill and stop, and the vault value at each bar."""

    fills: pd.DataFrame  # time, token, strategy, side, amount_in, amount_out (base units), exit_trigger
    blocks: pd.DataFrame  # time, token, strategy, side, rule, reason
    failures: pd.DataFrame  # time, token, strategy, side, reason
    value_quote: pd.Series  # the vault at each bar's prices, before its trades


PoolReserves = Callable[[str, float], tuple[int, int]]
"""(token, USD price) -> (quote reserve, token reserve) in base units, at one bar."""


def constant_product_pools(depth_quote: float, seed_prices: Mapping[str, float], quote: str,
                           decimals: Mapping[str, int]) -> PoolReserves:
    """Pools seeded with ``depth_quote`` of value at ``seed_prices`` and traded to each new
    price along x * y = k (the market driver's arbitrage, its fees left out)."""
    def reserves(token: str, price: float) -> tuple[int, int]:
        k = (depth_quote / 2) ** 2 / seed_prices[token]  # quote units x token units
        quote_units, token_units = math.sqrt(k * price), math.sqrt(k / price)
        return int(quote_units * 10 ** decimals[quote]), int(token_units * 10 ** decimals[token])
    return reserves


def amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """Uniswap V2's getAmountOut."""
    with_fee = amount_in * INPUT_AFTER_FEE
    return with_fee * reserve_out // (reserve_in * FEE_BASE + with_fee)


def feed_answer(price: float, feed_decimals: int) -> int:
    """A USD price as a feed answers it: rounded half to even to the feed's decimals, as
    the market driver pushes it."""
    return int(Decimal(str(price)).scaleb(feed_decimals).to_integral_value(ROUND_HALF_EVEN))


def run_user_backtest(setup: UserBacktestSetup, closes: pd.DataFrame, token_series: Mapping[str, str],
                      pools: PoolReserves, feed_decimals: int = 8) -> UserBacktestResult:
    """The user over ``closes`` (index: bar open times; a column per series), as the
    keeper would trade them; closes are rounded to the feeds' decimals first, as the
    feeds answer them. The user's protections (``setup.limits.protections``) start before
    the first bar, as the user set them before the replay."""
    prices = closes.round(feed_decimals)
    actions = {(token, strategy.name): strategy.signals(prices[token_series[token]].to_numpy(dtype=float)).action
               for token in setup.tokens for strategy in setup.strategies[token]}
    run = _UserRun(setup, pools, started_at=int(prices.index[0].timestamp()))
    for i, stamp in enumerate(prices.index):
        usd = {token: float(prices.at[stamp, token_series[token]]) for token in setup.tokens}
        oracle = {token: price_e18(feed_answer(float(closes.at[stamp, token_series[token]]), feed_decimals),
                                   feed_decimals) for token in setup.tokens}
        run.open_bar(stamp, usd)
        for token in setup.tokens:
            run.exit_if_due(stamp, token, i, oracle[token])
        if i == 0:
            continue  # no closed bar yet
        for token in setup.tokens:
            for strategy in setup.strategies[token]:
                action = Action(int(actions[(token, strategy.name)][i - 1]))
                run.decide(stamp, token, strategy.name, action, oracle[token])
    return run.result(prices.index)


FILL_COLUMNS = ["time", "token", "strategy", "side", "amount_in", "amount_out", "exit_trigger"]


class _UserRun:
    """The user backtest's state between bars (the engine's state, vault balances, the
    Executor's loss budget and trade clock, each protection's watch) and its steps."""

    def __init__(self, setup: UserBacktestSetup, pools: PoolReserves, started_at: int) -> None:
        self.setup, self.pools, self.limits = setup, pools, setup.limits
        self.state = UserState.fresh(setup.risk)
        self.budget = LossBudget(setup.daily_loss_budget_usd)
        self.balances = dict(setup.balances)
        self.watches = {token: ExitWatch(started_at=started_at) for token in setup.tokens
                        if token in self.limits.protections and self.limits.protections[token].active}
        self.fills: list[dict] = []
        self.blocks: list[dict] = []
        self.failures: list[dict] = []
        self.values: list[float] = []
        self.last_trade_at = 0  # the Executor's, which exits leave alone
        self.usd: dict[str, float] = {}
        self.pool_state: dict[str, tuple[int, int]] = {}

    def open_bar(self, stamp: pd.Timestamp, usd: Mapping[str, float]) -> None:
        """The market at the bar's closes: the vault valued (before the bar's trades) and marked."""
        self.usd, self.pool_state = {self.limits.quote: 1.0, **usd}, {}
        value = sum(self.value_usd(symbol, amount) for symbol, amount in self.balances.items() if symbol in self.usd)
        self.values.append(value)
        mark(self.state, self.limits, value, stamp.to_pydatetime())

    def value_usd(self, symbol: str, amount: int) -> float:
        """``amount`` base units of ``symbol`` at the bar's prices."""
        return amount / 10 ** self.setup.decimals[symbol] * self.usd[symbol]

    def exit_if_due(self, stamp: pd.Timestamp, token: str, round_id: int, price: int) -> None:
        """The keeper's first step for one token: with a live protection, the bar's round goes
        to the high-water mark (held or not, as the keeper follows it), and a trigger that
        holds with a balance sells the whole balance (the user's own deposit too) and spends
        the protection."""
        watch, balance = self.watches.get(token), self.balances.get(token, 0)
        if watch is None or watch.started_at is None:
            return
        when = int(stamp.timestamp())
        watch.observe(round_id, price, updated_at=when)
        trigger = watch.due(self.limits.protections[token], price)
        if trigger == ExitTrigger.NONE or balance <= 0:
            return
        intent = TradeIntent(token, EXIT_STRATEGY, SELL, token, self.limits.quote, balance)
        row = {"time": stamp, "token": token, "strategy": EXIT_STRATEGY, "side": SELL}
        swap = self.swap(intent)
        if swap.amount_out < swap.oracle_floor:  # the Executor reverts; the protection stays live
            record_failure(self.state, token, stamp.to_pydatetime())
            self.failures.append({**row, "reason": "the pool pays less than the oracle floor"})
            return
        # The user's own order: its loss counts in the budget, which never refuses it.
        self.take(intent, swap, loss_against_oracle(swap.value_in_usd, swap.oracle_out, swap.amount_out), when)
        record_exit(self.state, token, balance, swap.amount_out, self.setup.decimals[self.limits.quote],
                    stamp.to_pydatetime())
        watch.started_at = None  # spent until the next start
        self.fills.append({**row, "amount_in": balance, "amount_out": swap.amount_out, "exit_trigger": trigger.label})

    def decide(self, stamp: pd.Timestamp, token: str, strategy: str, action: Action, price: int) -> None:
        """One strategy's decision on the closed bar, chosen by the engine and filled at this bar's pool."""
        now: datetime = stamp.to_pydatetime()
        when = int(now.timestamp())
        choice = choose(self.state, self.limits, token, strategy, action, self.balances, now,
                        chain_time=when, last_trade_at=self.last_trade_at, value_usd=self.value_usd,
                        asset_price=price)
        if choice is None:
            return
        row = {"time": stamp, "token": token, "strategy": strategy, "side": choice.side}
        if not isinstance(choice, TradeIntent):
            self.blocks.append({**row, "rule": choice.rule, "reason": choice.reason})
            return
        swap = self.swap(choice)
        loss = loss_against_oracle(swap.value_in_usd, swap.oracle_out, swap.amount_out)
        refused = ("the pool pays less than the oracle floor" if swap.amount_out < swap.oracle_floor
                   else self.budget.refusal(loss, when))
        if refused is not None:
            record_failure(self.state, token, now)
            self.failures.append({**row, "reason": refused})
            return
        self.take(choice, swap, loss, when)
        record_fill(self.state, choice, choice.amount_in, swap.amount_out, self.setup.decimals[self.limits.quote], now)
        self.last_trade_at = when
        self.fills.append({**row, "amount_in": choice.amount_in, "amount_out": swap.amount_out, "exit_trigger": None})
        if choice.side == BUY and token in self.watches:
            # Mined after the bar's round: the high-water mark starts from the next one.
            self.watches[token].restart(when + 1)

    def swap(self, intent: TradeIntent) -> _Swap:
        """What the token's pool pays for ``intent`` at this bar, as it stands after the bar's earlier trades."""
        reserves = self.pool_state.setdefault(intent.asset, self.pools(intent.asset, self.usd[intent.asset]))
        return _swap(intent, reserves, self.usd, self.setup)

    def take(self, intent: TradeIntent, swap: _Swap, loss: float, when: int) -> None:
        """An executed swap: the pool moves, the loss budget counts its ``loss``, the vault balances change."""
        self.pool_state[intent.asset] = swap.reserves_after
        self.budget.count(loss, when)
        self.balances[intent.token_in] -= intent.amount_in
        self.balances[intent.token_out] = self.balances.get(intent.token_out, 0) + swap.amount_out

    def result(self, index: pd.Index) -> UserBacktestResult:
        """Every fill, stop and failure, and the value at each bar."""
        return UserBacktestResult(
            fills=pd.DataFrame(self.fills, columns=FILL_COLUMNS),
            blocks=pd.DataFrame(self.blocks, columns=["time", "token", "strategy", "side", "rule", "reason"]),
            failures=pd.DataFrame(self.failures, columns=["time", "token", "strategy", "side", "reason"]),
            value_quote=pd.Series(np.array(self.values), index=index, name="value_quote"),
        )


@dataclass(frozen=True)
class _Swap:
    """What the pool pays for an intent, against what the oracle says it is worth."""

    amount_out: int
    reserves_after: tuple[int, int]  # (quote, token)
    value_in_usd: float
    oracle_out: float  # base units of the output at oracle prices
    oracle_floor: float  # the least the Executor accepts: oracle_out less the user's slippage


def _swap(intent: TradeIntent, reserves: tuple[int, int], usd: Mapping[str, float],
          setup: UserBacktestSetup) -> _Swap:
    """The pool's output for the intent and the pool after it, with the oracle's view."""
    quote_reserve, token_reserve = reserves
    buying = intent.side == BUY
    reserve_in, reserve_out = (quote_reserve, token_reserve) if buying else (token_reserve, quote_reserve)
    out = amount_out(intent.amount_in, reserve_in, reserve_out)
    value_in = intent.amount_in / 10 ** setup.decimals[intent.token_in] * usd[intent.token_in]
    oracle_out = value_in / usd[intent.token_out] * 10 ** setup.decimals[intent.token_out]
    reserve_in, reserve_out = reserve_in + intent.amount_in, reserve_out - out
    return _Swap(amount_out=out, reserves_after=(reserve_in, reserve_out) if buying else (reserve_out, reserve_in),
                 value_in_usd=value_in, oracle_out=oracle_out,
                 oracle_floor=oracle_out * (MAX_BPS - setup.max_slippage_bps) / MAX_BPS)
