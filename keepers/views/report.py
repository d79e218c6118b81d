"""What the keepers did, from the store: ``status`` (now) and ``report`` (so far).

The report's metrics come from the backtester's own ``compute_stats`` (one
implementation of every metric): the equity curve is the user's vault value at each
cycle, and the trades are the user's round trips (a BUY and the SELLs that close it),
with the Uniswap fee, the price impact against the oracle and the gas they cost.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from keepers.engine.positions import apply_trade
from keepers.persistence.store import Store
from keepers.persistence.tables import (
    DROPPED,
    FAILED,
    MINED,
    REVERTED,
    CycleRow,
    TradeRow,
)
from strategies.engine import BUY, Sleeve, sell_sleeves
from strategies.exits import EXIT_STRATEGY
from strategies.metrics import compute_stats

UNISWAP_V2_FEE = 0.003
PRICE_SCALE = 10**18  # the Executor reports USD prices with 18 decimals
# A live vault has no single buy-and-hold reference; its gas is paid in ETH by the
# keeper (reported as gas_eth) and its slippage is part of the price impact.
LIVE_OMITS = ("Buy & Hold Return [%]", "Gas Paid [quote]", "Slippage Paid [quote]")


@dataclass
class RoundTrip:
    """A BUY and the SELLs that close it, with what they cost."""

    asset: str
    strategy: str
    opened: datetime
    cost_quote: float = 0.0
    pnl_quote: float = 0.0
    fee_quote: float = 0.0
    impact_quote: float = 0.0
    gas_eth: float = 0.0
    closed: datetime | None = None

    @property
    def return_pct(self) -> float:
        """Profit over the quote spent on entry, in percent; NaN while open."""
        if self.closed is None or self.cost_quote <= 0:
            return math.nan
        return self.pnl_quote / self.cost_quote * 100


@dataclass
class UserReport:
    """One user's results."""

    user_id: str
    round_trips: list[RoundTrip] = field(default_factory=list)
    trades_mined: int = 0
    trades_failed: int = 0
    blocks: Counter = field(default_factory=Counter)
    realised_quote: float = 0.0
    stats: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The figures as JSON-ready values."""
        closed = [trip for trip in self.round_trips if trip.closed is not None]
        wins = [trip for trip in closed if trip.pnl_quote > 0]
        return {
            "user": self.user_id,
            "realised_pnl_quote": self.realised_quote,
            "trades_mined": self.trades_mined,
            "trades_failed": self.trades_failed,
            "round_trips_closed": len(closed),
            "round_trips_open": len(self.round_trips) - len(closed),
            "win_rate_pct": len(wins) / len(closed) * 100 if closed else None,
            "fees_quote": sum(trip.fee_quote for trip in self.round_trips),
            "price_impact_quote": sum(trip.impact_quote for trip in self.round_trips),
            "gas_eth": sum(trip.gas_eth for trip in self.round_trips),
            "risk_blocks": dict(self.blocks),
            "stats": self.stats,
        }


@dataclass(frozen=True)
class TradeCosts:
    """What one mined trade cost beyond the oracle price."""

    fee_quote: float  # the pool's 0.3% fee on what was sold, valued at the oracle
    impact_quote: float  # oracle value sold minus oracle value bought, less the fee
    gas_eth: float  # paid by the keeper account, not by the user


def trade_costs(trade: TradeRow, decimals: dict[str, int], quote: str) -> TradeCosts:
    """The fee, price impact and gas of one mined trade, valued with the oracle prices
    its TradeExecuted event carries."""
    buying = trade.side == BUY
    symbol_in, symbol_out = (quote, trade.asset) if buying else (trade.asset, quote)
    quote_usd = (trade.price_in if buying else trade.price_out) / PRICE_SCALE
    sold_usd = trade.amount_in / 10 ** decimals[symbol_in] * trade.price_in / PRICE_SCALE
    bought_usd = trade.amount_out / 10 ** decimals[symbol_out] * trade.price_out / PRICE_SCALE
    fee_quote = sold_usd * UNISWAP_V2_FEE / quote_usd
    return TradeCosts(fee_quote=fee_quote, impact_quote=(sold_usd - bought_usd) / quote_usd - fee_quote,
                      gas_eth=(trade.gas_used or 0) * (trade.gas_price or 0) / 10**18)


def round_trips(trades: list[TradeRow], decimals: dict[str, int], quote: str) -> list[RoundTrip]:
    """The round trips of one user's mined trades (in order), sleeve by sleeve."""
    trips: list[RoundTrip] = []
    open_trips: dict[tuple[str, str], RoundTrip] = {}
    held: dict[tuple[str, str], Sleeve] = {}
    for trade in trades:
        if trade.status != MINED:
            continue
        if trade.strategy == EXIT_STRATEGY:
            _close_by_exit(trade, held, open_trips, decimals, quote)
            continue
        key = (trade.asset, trade.strategy)
        sleeve = held.setdefault(key, Sleeve())
        trip = open_trips.get(key)
        if trip is None:  # a BUY opens one; a SELL without one sells what came before the store's history
            trip = RoundTrip(trade.asset, trade.strategy, trade.bar_time)
            trips.append(trip)
            if trade.side == BUY:
                open_trips[key] = trip
        profit = apply_trade(sleeve, trade, decimals[quote])
        if profit is None:
            trip.cost_quote += trade.amount_in / 10 ** decimals[quote]
        else:
            trip.pnl_quote += profit
        costs = trade_costs(trade, decimals, quote)
        trip.fee_quote += costs.fee_quote
        trip.impact_quote += costs.impact_quote
        trip.gas_eth += costs.gas_eth
        if trade.side != BUY and sleeve.tokens == 0:
            trip.closed = trade.bar_time
            open_trips.pop(key, None)
    return trips


def _close_by_exit(trade: TradeRow, held: dict[tuple[str, str], Sleeve], open_trips: dict[tuple[str, str], RoundTrip],
                   decimals: dict[str, int], quote: str) -> None:
    """A protective exit closes every open round trip of its token: each takes what its
    sleeve realised and its share of the exit's costs by the tokens it held."""
    tokens = {key: sleeve.tokens for key, sleeve in held.items() if key[0] == trade.asset and sleeve.tokens > 0}
    realised = {key: held[key].realised_quote for key in tokens}
    _, booked = sell_sleeves(held, trade.asset, trade.amount_in, trade.amount_out / 10 ** decimals[quote])
    costs, whole = trade_costs(trade, decimals, quote), sum(tokens.values())
    for key in booked:
        trip, share = open_trips.pop(key, None), tokens[key] / whole
        if trip is None:
            continue
        trip.pnl_quote += held[key].realised_quote - realised[key]
        trip.fee_quote += costs.fee_quote * share
        trip.impact_quote += costs.impact_quote * share
        trip.gas_eth += costs.gas_eth * share
        trip.closed = trade.bar_time


def user_report(store: Store, user_id: str, decimals: dict[str, int], quote: str, timeframe_seconds: int) -> UserReport:
    """Everything ``report`` shows for one user."""
    trades = store.trades(user_id)
    report = UserReport(user_id=user_id)
    report.round_trips = round_trips(trades, decimals, quote)
    report.trades_mined = sum(trade.status == MINED for trade in trades)
    report.trades_failed = sum(trade.status in (FAILED, REVERTED, DROPPED) for trade in trades)
    report.blocks = Counter(event.rule for event in store.risk_events(user_id))
    report.realised_quote = sum(trip.pnl_quote for trip in report.round_trips)
    cycles = [row for row in store.cycles(user_id) if row.vault_value_quote is not None and row.block_time]
    if len({row.block_time for row in cycles}) >= 2:
        report.stats = _stats(cycles, report.round_trips, timeframe_seconds)
    return report


def _stats(cycles: list[CycleRow], trips: list[RoundTrip], timeframe_seconds: int) -> dict[str, Any]:
    index = pd.DatetimeIndex([row.block_time for row in cycles])
    equity = pd.Series([row.vault_value_quote for row in cycles], index=index)
    positions = pd.Series([row.position_value_quote or 0.0 for row in cycles], index=index)
    keep = ~index.duplicated(keep="last")
    equity, positions = equity[keep], positions[keep]
    frame = pd.DataFrame({
        "pnl_quote": [trip.pnl_quote for trip in trips],
        "return_pct": [trip.return_pct for trip in trips],
        "fee_quote": [trip.fee_quote for trip in trips],
        "slippage_quote": [0.0 for _ in trips],
        "impact_quote": [trip.impact_quote for trip in trips],
        "gas_quote": [0.0 for _ in trips],
    })
    stats = compute_stats(equity, frame, positions, equity, pd.Timedelta(seconds=timeframe_seconds))
    return {key: (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in stats.items() if key not in LIVE_OMITS}
