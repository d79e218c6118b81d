"""The backtest of one user's settings: the keeper's state machine (strategies.engine)
run bar by bar over recorded closes, with the user's vault balances, sizing, on-chain
per-trade maxima, risk rules and drawdown kill switch, filled through a constant-product
pool at each bar's close.

The timeline is the replay's and the keeper's: at bar ``i`` the market is at close ``i``;
the user's value is marked at those prices (the kill switch), then each strategy's
decision on the closed bar ``i - 1`` is chosen and filled at bar ``i``'s pool. The rules'
clock is the bar clock: bar ``i``'s open time, the end of the decided bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from strategies.base import Action, Strategy
from strategies.engine import (
    BUY,
    LossBudget,
    TradeIntent,
    UserLimits,
    UserState,
    choose,
    loss_against_oracle,
    mark,
    record_failure,
    record_fill,
)
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

    fills: pd.DataFrame  # time, token, strategy, side, amount_in, amount_out (base units)
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


def run_user_backtest(setup: UserBacktestSetup, closes: pd.DataFrame, token_series: Mapping[str, str],
                      pools: PoolReserves, feed_decimals: int = 8) -> UserBacktestResult:
    """The user over ``closes`` (index: bar open times; a column per series), as the
    keeper would trade them; closes are rounded to the feeds' decimals first, as the
    feeds answer them."""
    limits, quote = setup.limits, setup.limits.quote
    prices = closes.round(feed_decimals)
    actions = {(token, strategy.name): strategy.signals(prices[token_series[token]].to_numpy(dtype=float)).action
               for token in setup.tokens for strategy in setup.strategies[token]}
    state = UserState.fresh(setup.risk)
    budget = LossBudget(setup.daily_loss_budget_usd)
    balances = dict(setup.balances)
    fills, blocks, failures, values = [], [], [], []
    last_trade_at = 0
    for i, stamp in enumerate(prices.index):
        now: datetime = stamp.to_pydatetime()
        usd = {quote: 1.0, **{token: float(prices.at[stamp, token_series[token]]) for token in setup.tokens}}
        value = sum(amount / 10 ** setup.decimals[symbol] * usd[symbol] for symbol, amount in balances.items()
                    if symbol in usd)
        values.append(value)
        mark(state, limits, value, now)
        if i == 0:
            continue  # no closed bar yet
        pool_state = {}
        for token in setup.tokens:
            for strategy in setup.strategies[token]:
                action = Action(int(actions[(token, strategy.name)][i - 1]))
                choice = choose(state, limits, token, strategy.name, action, balances, now,
                                chain_time=int(now.timestamp()), last_trade_at=last_trade_at,
                                value_usd=lambda symbol, amount: amount / 10 ** setup.decimals[symbol] * usd[symbol])
                if choice is None:
                    continue
                row = {"time": stamp, "token": token, "strategy": strategy.name, "side": choice.side}
                if not isinstance(choice, TradeIntent):
                    blocks.append({**row, "rule": choice.rule, "reason": choice.reason})
                    continue
                reserves = pool_state.setdefault(token, pools(token, usd[token]))
                swap = _swap(choice, reserves, usd, setup)
                when = int(now.timestamp())
                loss = loss_against_oracle(swap.value_in_usd, swap.oracle_out, swap.amount_out)
                refused = ("the pool pays less than the oracle floor" if swap.amount_out < swap.oracle_floor
                           else budget.refusal(loss, when))
                if refused is not None:
                    record_failure(state, token, now)
                    failures.append({**row, "reason": refused})
                    continue
                out, pool_state[token] = swap.amount_out, swap.reserves_after
                budget.count(loss, when)
                balances[choice.token_in] -= choice.amount_in
                balances[choice.token_out] = balances.get(choice.token_out, 0) + out
                record_fill(state, choice, choice.amount_in, out, setup.decimals[quote], now)
                last_trade_at = when
                fills.append({**row, "amount_in": choice.amount_in, "amount_out": out})
    return UserBacktestResult(
        fills=pd.DataFrame(fills, columns=["time", "token", "strategy", "side", "amount_in", "amount_out"]),
        blocks=pd.DataFrame(blocks, columns=["time", "token", "strategy", "side", "rule", "reason"]),
        failures=pd.DataFrame(failures, columns=["time", "token", "strategy", "side", "reason"]),
        value_quote=pd.Series(np.array(values), index=prices.index, name="value_quote"),
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
