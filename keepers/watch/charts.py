"""What the status page charts for one user and token: the price bars the keeper decided
on, each trade as a marker (time, side, amount, price, strategy, reason), and the
indicator lines of the user's strategies, computed by the strategies' own code over
the stored bars (the computation the keeper decides with; the page draws, never computes).
The user's equity with its peak and the drawdown kill switch's level: ``equity_lines``.

Times are Unix seconds (UTC), as the chart library takes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from keepers.persistence.store import Store
from keepers.persistence.tables import EXIT_NOW, TradeRow
from strategies.base import Strategy
from strategies.engine import BUY

CHART_BARS = 500  # the newest bars charted; indicators are computed over every stored bar
# Indicators in price units are drawn over the bars; the oscillators in a pane below
# them (as line or histogram); the rest (the close, %b, bandwidth) are in the decisions table.
PRICE_LINES = ("sma", "middle", "upper", "lower")
LOWER_PANE = {"rsi": "line", "macd": "line", "signal": "line", "histogram": "histogram"}


def seconds(when: datetime) -> int:
    """A time as the chart's Unix seconds."""
    return int(when.timestamp())


def price_chart(store: Store, user_id: str, token: str, series: str, timeframe_seconds: int,
                strategies: Sequence[Strategy], decimals: dict[str, int], quote: str) -> dict[str, Any]:
    """The bars of ``token``'s price series, the user's trades of it and its strategies' indicators."""
    bars = store.bars(series, timeframe_seconds)
    closes = np.array([bar.close for bar in bars], dtype=np.float64)
    times = [seconds(bar.bar_time) for bar in bars]
    shown = slice(max(len(bars) - CHART_BARS, 0), None)
    indicators = []
    for strategy in strategies:
        if not len(closes):
            break
        computed = strategy.signals(closes).indicators
        for name in (*PRICE_LINES, *LOWER_PANE):
            if name in computed:
                indicators.append({"strategy": strategy.name, "name": name, "pane": "price" if name in PRICE_LINES
                                   else "lower", "kind": LOWER_PANE.get(name, "line"),
                                   "points": _points(times[shown], computed[name][shown])})
    return {
        "token": token, "series": series, "quote": quote, "timeframe_seconds": timeframe_seconds,
        "bars": [{"time": seconds(bar.bar_time), "open": bar.open, "high": bar.high, "low": bar.low,
                  "close": bar.close} for bar in bars[shown]],
        "trades": _trades(store, user_id, token, decimals, quote),
        "indicators": indicators,
    }


def _points(times: Sequence[int], values: np.ndarray) -> list[dict[str, float]]:
    """(time, value) pairs, the warm-up's NaN left out."""
    return [{"time": when, "value": float(value)} for when, value in zip(times, values, strict=True)
            if not math.isnan(value)]


def _trades(store: Store, user_id: str, token: str, decimals: dict[str, int], quote: str) -> list[dict[str, Any]]:
    """The user's trades of ``token`` as the chart marks them, with the reason of each: its
    strategy's decision on that bar, or the operator's exit that asked for it."""
    reasons = {(row.strategy, row.bar_time): row.reason for row in store.signals(user_id) if row.asset == token}
    exits = {row.trade_id: f"operator exit (by {row.operator})" for row in store.control_actions(user_id)
             if row.action == EXIT_NOW and row.trade_id}
    return [_trade(row, exits.get(row.trade_id) or reasons.get((row.strategy, row.bar_time), ""), decimals, quote)
            for row in store.trades(user_id) if row.asset == token]


def _trade(row: TradeRow, reason: str, decimals: dict[str, int], quote: str) -> dict[str, Any]:
    buying = row.side == BUY
    quote_base, token_base = (row.amount_in, row.amount_out) if buying else (row.amount_out, row.amount_in)
    amount = None if token_base is None else token_base / 10 ** decimals[row.asset]
    quote_amount = None if quote_base is None else quote_base / 10 ** decimals[quote]
    return {"time": seconds(row.bar_time), "trade_id": row.trade_id, "side": row.side, "status": row.status,
            "strategy": row.strategy, "reason": reason, "amount": amount, "quote_amount": quote_amount,
            "price": quote_amount / amount if amount and quote_amount is not None else None}


def equity_lines(points: Sequence[tuple[datetime, float]], kill_switch_drawdown: float | None) -> list[dict[str, Any]]:
    """Each (time, vault value) with the peak so far and the level at which the drawdown
    kill switch engages (None without one); one point per time (the last value)."""
    by_time = {seconds(when): value for when, value in points}
    lines, peak = [], -math.inf
    for when, value in by_time.items():
        peak = max(peak, value)
        lines.append({"time": when, "value": value, "peak": peak,
                      "kill_level": None if kill_switch_drawdown is None else peak * (1 - kill_switch_drawdown)})
    return lines
