"""Shared helpers for the backtester tests: test-only strategies, price frames and a
plain per-bar reference backtest (slow, written for obviousness, not speed).

The reference shares no code with strategies/backtest.py or strategies/metrics.py:
it has its own loop, its own Uniswap formula (integer-style 997/1000) and its own
metrics written with the statistics module.
"""

from __future__ import annotations

import importlib.util
import math
import statistics
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from strategies.base import Action, SignalFrame, Strategy, StrategyParams
from strategies.data import PriceData
from strategies.risk import RiskEvaluator, TradeRecord


class CrossParams(StrategyParams):
    fast: int = Field(3, ge=2)
    slow: int = Field(8, ge=2)


class SmaCross(Strategy):
    """BUY when the fast SMA crosses above the slow one, SELL when it crosses below."""

    id = 901
    name = "test_sma_cross"
    Params = CrossParams

    @property
    def warmup(self) -> int:
        return self.params.slow

    def signals(self, close: np.ndarray) -> SignalFrame:
        fast, slow = _sma(close, self.params.fast), _sma(close, self.params.slow)
        above = fast > slow
        was_above = np.concatenate(([False], above[:-1]))
        ready = np.concatenate(([False], ~np.isnan(slow[:-1])))
        action = np.where(ready & above & ~was_above, 1, np.where(ready & ~above & was_above, -1, 0))
        action = action.astype(np.int8)
        return SignalFrame(action, np.abs(action).astype(float), {"fast": fast, "slow": slow})

    def explain(self, action: Action, indicators: dict[str, float]) -> str:
        return f"{action.name}: fast {indicators['fast']:.2f} vs slow {indicators['slow']:.2f}"


class ScriptParams(StrategyParams):
    seed: int = 0
    p_signal: float = 0.2


class ScriptedSignals(Strategy):
    """Random BUY/SELL signals drawn from a seed: drives the engine through every branch."""

    id = 902
    name = "test_scripted"
    Params = ScriptParams

    @property
    def warmup(self) -> int:
        return 0

    def signals(self, close: np.ndarray) -> SignalFrame:
        rng = np.random.default_rng(self.params.seed)
        draw = rng.random(len(close))
        half = self.params.p_signal / 2
        action = np.where(draw < half, 1, np.where(draw < 2 * half, -1, 0)).astype(np.int8)
        return SignalFrame(action, np.abs(action).astype(float))

    def explain(self, action: Action, indicators: dict[str, float]) -> str:
        return action.name


class FixedParams(StrategyParams):
    actions: tuple[int, ...]


class FixedSignals(Strategy):
    """Returns the actions it was built with: for hand-computed cases."""

    id = 903
    name = "test_fixed"
    Params = FixedParams

    @property
    def warmup(self) -> int:
        return 0

    def signals(self, close: np.ndarray) -> SignalFrame:
        action = np.array(self.params.actions, dtype=np.int8)
        return SignalFrame(action, np.abs(action).astype(float))

    def explain(self, action: Action, indicators: dict[str, float]) -> str:
        return action.name


def _sma(close: np.ndarray, period: int) -> np.ndarray:
    out = np.full(len(close), np.nan)
    for t in range(period - 1, len(close)):
        out[t] = sum(close[t - period + 1 : t + 1]) / period
    return out


def price_data(closes: dict[str, list[float]], opens: dict[str, list[float]] | None = None,
               start: str = "2024-01-01", interval: str = "1D") -> PriceData:
    """In-memory PriceData: one frame per token, bars every ``interval``."""
    bars = {}
    for token, close in closes.items():
        index = pd.date_range(start, periods=len(close), freq=interval, tz="UTC", name="timestamp")
        frame = pd.DataFrame({"close": np.asarray(close, dtype=float)}, index=index)
        if opens is not None:
            frame.insert(0, "open", np.asarray(opens[token], dtype=float))
        bars[token] = frame
    return PriceData(bars, pd.Timedelta(interval), "<test>")


def random_walk(rng: np.random.Generator, n: int, start: float = 100.0) -> tuple[list[float], list[float]]:
    """Closes of a geometric random walk and opens near the previous close."""
    close = start * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    open_ = np.concatenate(([start], close[:-1])) * np.exp(rng.normal(0, 0.005, n))
    return close.tolist(), open_.tolist()


# ---------------------------------------------------------------- reference loop


def reference_backtest(data: PriceData, strategies, config, rules=None):
    """Per-bar loop over every sleeve; all sleeves must share timestamps.

    Returns (trades, equity, position_value, benchmark) as plain lists; each trade is
    a dict with the same keys as the engine's trade table.
    """
    tokens = list(data.bars)
    index = data.bars[tokens[0]].index
    sleeves = []
    cash0 = config.initial_balance / (len(strategies) * len(tokens))
    for strategy in strategies:
        for token in tokens:
            frame = data.bars[token]
            close = [float(x) for x in frame["close"]]
            sleeves.append({
                "strategy": strategy.name, "token": token, "close": close,
                "price": [float(x) for x in frame[config.fill_at]],
                "action": [int(a) for a in strategy.signals(np.array(close)).action],
                "cash": cash0, "tokens": 0.0, "open": None,
            })
    evaluator = RiskEvaluator(rules) if rules is not None else None
    blocked = {}
    trades, equity, position_value = [], [], []
    fee_rate, slip = config.fee_bps / 10_000, config.slippage_bps / 10_000
    size, gas, depth = config.trade_size, config.gas_quote, config.pool_depth_quote
    for t in range(len(index)):
        now = index[t].to_pydatetime()
        for s in sleeves:
            if t == 0:
                continue
            signal, price = s["action"][t - 1], s["price"][t]
            buying = signal == 1 and s["tokens"] == 0
            selling = signal == -1 and s["tokens"] > 0
            if not (buying or selling):
                continue
            if evaluator is not None:
                lock = evaluator.blocking_lock(now, s["token"], opening=buying)
                if lock is not None:
                    blocked[lock.rule] = blocked.get(lock.rule, 0) + 1
                    continue
            if buying:
                budget = size.amount * s["cash"] if size.is_fraction else size.amount
                budget = min(budget, s["cash"] - gas)
                if budget <= 0:
                    continue
                fee = budget * fee_rate
                swapped = budget - fee
                if depth:
                    with_fee = swapped * 997
                    out = with_fee * (depth / price) / (depth * 1000 + with_fee)
                    pool_fee = swapped * 3 / 1000
                else:
                    out, pool_fee = swapped / price, 0.0
                got = out / (1 + slip)
                impact = swapped - pool_fee - out * price
                s["cash"] -= budget + gas
                s["tokens"] = got
                s["open"] = {
                    "strategy": s["strategy"], "token": s["token"], "entry_time": index[t],
                    "entry_bar": t, "size_tokens": got,
                    "entry_price": (swapped - pool_fee) / got, "entry_quote": budget + gas,
                    "fee_quote": fee + pool_fee, "slippage_quote": (out - got) * price,
                    "impact_quote": impact, "gas_quote": gas,
                }
                trades.append(s["open"])
                pnl = None
            else:
                q = s["tokens"]
                if depth:
                    with_fee = q * 997
                    out = with_fee * depth / ((depth / price) * 1000 + with_fee)
                    pool_fee = q * price * 3 / 1000
                else:
                    out, pool_fee = q * price, 0.0
                impact = q * price - pool_fee - out
                gross = out * (1 - slip)
                fee = gross * fee_rate
                proceeds = gross - fee
                s["cash"] += proceeds - gas
                s["tokens"] = 0.0
                trade = s["open"]
                trade.update(
                    exit_time=index[t], exit_price=(gross + pool_fee) / q, exit_quote=proceeds - gas,
                    bars_held=t - trade["entry_bar"],
                )
                trade["fee_quote"] += fee + pool_fee
                trade["slippage_quote"] += out - gross
                trade["impact_quote"] += impact
                trade["gas_quote"] += gas
                trade["pnl_quote"] = trade["exit_quote"] - trade["entry_quote"]
                trade["return_pct"] = trade["pnl_quote"] / trade["entry_quote"] * 100
                pnl = trade["pnl_quote"]
                s["open"] = None
            if evaluator is not None:
                evaluator.record(TradeRecord(now, s["token"], pnl, True))
        equity.append(sum(s["cash"] + s["tokens"] * s["close"][t] for s in sleeves))
        position_value.append(sum(s["tokens"] * s["close"][t] for s in sleeves))
    benchmark = [sum(cash0 * s["close"][t] / s["close"][0] for s in sleeves) for t in range(len(index))]
    return trades, equity, position_value, benchmark, blocked


def reference_stats(index: pd.DatetimeIndex, equity, position_value, benchmark, trades, interval) -> dict:
    """The metrics of strategies.metrics, from their written definitions."""
    per_year = timedelta(days=365) / interval
    returns = [equity[i] / equity[i - 1] - 1 for i in range(1, len(equity))]
    mean = sum(returns) / len(returns) if returns else math.nan
    stdev = statistics.stdev(returns) if len(returns) > 1 else math.nan
    downside = math.sqrt(sum(min(r, 0) ** 2 for r in returns) / len(returns)) if returns else math.nan
    days = (index[-1] - index[0]) / timedelta(days=1)
    growth = equity[-1] / equity[0]
    cagr = growth ** (365 / days) - 1 if days > 0 and growth > 0 else math.nan
    peak, peak_at, worst = equity[0], 0, 0.0
    longest = 0.0
    for i, value in enumerate(equity):
        if value >= peak:
            if i > peak_at + 1:  # the bars in between were under the peak
                longest = max(longest, (index[i] - index[peak_at]) / timedelta(days=1))
            peak, peak_at = value, i
        else:
            worst = min(worst, value / peak - 1)
    if equity[-1] < peak:
        longest = max(longest, (index[-1] - index[peak_at]) / timedelta(days=1))
    closed = [t for t in trades if "pnl_quote" in t]
    pnl = [t["pnl_quote"] for t in closed]
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p < 0]

    def div(a, b):
        return a / b if b and not math.isnan(b) and not math.isnan(a) else math.nan

    if losses:
        profit_factor = sum(wins) / -sum(losses)
    else:
        profit_factor = math.inf if wins else math.nan
    return {
        "Start": index[0].isoformat(),
        "End": index[-1].isoformat(),
        "Duration [days]": days,
        "Bars": len(equity),
        "Periods per Year": per_year,
        "Initial Equity [quote]": equity[0],
        "Final Equity [quote]": equity[-1],
        "Peak Equity [quote]": max(equity),
        "Return [%]": (growth - 1) * 100,
        "Buy & Hold Return [%]": (benchmark[-1] / benchmark[0] - 1) * 100,
        "CAGR [%]": cagr * 100,
        "Volatility (Ann.) [%]": stdev * math.sqrt(per_year) * 100,
        "Sharpe Ratio": div(mean, stdev) * math.sqrt(per_year),
        "Sortino Ratio": div(mean, downside) * math.sqrt(per_year),
        "Calmar Ratio": div(cagr, abs(worst)),
        "Max. Drawdown [%]": worst * 100,
        "Max. Drawdown Duration [days]": longest,
        "# Trades": len(closed),
        "Open Trades": len(trades) - len(closed),
        "Win Rate [%]": div(len(wins), len(pnl)) * 100,
        "Avg. Win [quote]": sum(wins) / len(wins) if wins else math.nan,
        "Avg. Loss [quote]": sum(losses) / len(losses) if losses else math.nan,
        "Best Trade [%]": max((t["return_pct"] for t in closed), default=math.nan),
        "Worst Trade [%]": min((t["return_pct"] for t in closed), default=math.nan),
        "Profit Factor": profit_factor,
        "Expectancy [quote]": sum(pnl) / len(pnl) if pnl else math.nan,
        "Exposure Time [%]": sum(1 for v in position_value if v > 0) / len(position_value) * 100,
        "Fees Paid [quote]": sum(t["fee_quote"] for t in trades),
        "Slippage Paid [quote]": sum(t["slippage_quote"] for t in trades),
        "Price Impact Paid [quote]": sum(t["impact_quote"] for t in trades),
        "Gas Paid [quote]": sum(t["gas_quote"] for t in trades),
    }


def assert_close(actual, expected, key="", rel=1e-9, abs_=1e-9):
    """Equal strings/ints, or floats equal within tolerance (NaN equals NaN)."""
    if isinstance(expected, str) or isinstance(expected, int) and not isinstance(expected, bool):
        assert actual == expected, f"{key}: {actual!r} != {expected!r}"
        return
    expected, actual = float(expected), float(actual)
    if math.isnan(expected) or math.isinf(expected):
        assert (math.isnan(actual) and math.isnan(expected)) or actual == expected, f"{key}: {actual} != {expected}"
        return
    assert math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_), f"{key}: {actual} != {expected}"


def backtest_cli():
    """The click command of scripts/backtest.py (scripts/ is not a package: loaded by path)."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "backtest.py"
    spec = importlib.util.spec_from_file_location("backtest_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cli
