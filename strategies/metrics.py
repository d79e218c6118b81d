"""Backtest metrics: one pure function from an equity curve and a trade list.

Conventions (so that every number can be redone by hand):

- Equity is marked to market at each bar's close: cash + tokens x close, with no
  exit costs. Returns are per bar: ``r_t = E_t / E_(t-1) - 1``.
- Annualisation: crypto trades every day, so a year is 365 days and
  ``periods per year = 365 days / bar interval`` (daily bars: 365, hourly: 8760).
- Sharpe = mean(r) / std(r, ddof=1) x sqrt(periods per year), risk-free rate 0.
  Sortino = mean(r) / sqrt(mean(min(r, 0)^2)) x sqrt(periods per year).
  Volatility = std(r, ddof=1) x sqrt(periods per year).
- CAGR = (E_end / E_start) ^ (365 days / (end - start)) - 1 (NaN if E_end <= 0, which
  only gas costs larger than a position can cause); Calmar = CAGR / |max DD|.
- Drawdown at t = E_t / max(E_0..E_t) - 1 (on equity peaks). A drawdown lasts from
  its peak bar to the first bar back at or above the peak, or to the last bar.
- Trade statistics use closed trades only; costs count every fill, including the
  entry of a position still open at the end.

Ratios with a zero denominator are NaN (JSON null), except a profit factor with wins
and no losses, which is infinite.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import pandas as pd

YEAR = pd.Timedelta(days=365)
DAY_NS = pd.Timedelta(days=1).value

STATS_DOC: dict[str, str] = {
    "Start": "timestamp of the first bar (ISO-8601, UTC)",
    "End": "timestamp of the last bar (ISO-8601, UTC)",
    "Duration [days]": "End - Start in days",
    "Bars": "number of bars in the equity curve",
    "Periods per Year": "annualisation factor: 365 days / bar interval",
    "Initial Equity [quote]": "equity at the first bar's close (no fill can happen on it)",
    "Final Equity [quote]": "equity at the last bar's close, open positions marked at that close",
    "Peak Equity [quote]": "highest equity at any bar's close",
    "Return [%]": "(Final Equity / Initial Equity - 1) x 100",
    "Buy & Hold Return [%]": "return of putting each sleeve's capital in its token at the first close and holding it to the last close, without costs",
    "CAGR [%]": "compound annual growth rate over Duration, years of 365 days",
    "Volatility (Ann.) [%]": "sample standard deviation (ddof=1) of per-bar returns x sqrt(Periods per Year) x 100",
    "Sharpe Ratio": "mean per-bar return / its sample standard deviation x sqrt(Periods per Year), risk-free rate 0",
    "Sortino Ratio": "mean per-bar return / sqrt(mean(min(return, 0)^2)) x sqrt(Periods per Year)",
    "Calmar Ratio": "CAGR / |Max. Drawdown|, both as fractions",
    "Max. Drawdown [%]": "lowest (Equity / running peak of Equity - 1) x 100; zero or negative",
    "Max. Drawdown Duration [days]": "longest time from an equity peak to the first bar back at or above it (or to the last bar)",
    "# Trades": "number of closed round trips (BUY fill then SELL fill)",
    "Open Trades": "positions still open at the last bar (marked to market, not closed)",
    "Win Rate [%]": "closed trades with PnL > 0 / # Trades x 100",
    "Avg. Win [quote]": "mean PnL of closed trades with PnL > 0",
    "Avg. Loss [quote]": "mean PnL of closed trades with PnL < 0 (negative)",
    "Best Trade [%]": "highest closed-trade return: PnL / quote spent on entry (incl. gas) x 100",
    "Worst Trade [%]": "lowest closed-trade return, as Best Trade",
    "Profit Factor": "sum of winning PnL / |sum of losing PnL|",
    "Expectancy [quote]": "mean PnL per closed trade",
    "Exposure Time [%]": "share of bars at whose close at least one position is open x 100",
    "Fees Paid [quote]": "fee_bps fees plus the AMM's 0.3% pool fee, over every fill",
    "Slippage Paid [quote]": "value lost to slippage_bps over every fill, valued at the reference price",
    "Price Impact Paid [quote]": "value lost to AMM price impact over every fill (0 without pool depth)",
    "Gas Paid [quote]": "gas cost over every fill",
}

BREAKDOWN_DOC: dict[str, str] = {
    "By Token": "a run with several tokens: token -> every STATS_DOC metric over that token's sleeves",
    "By Strategy": "a run with several strategies: strategy -> every STATS_DOC metric over its sleeves",
}


def periods_per_year(interval: pd.Timedelta) -> float:
    """Bars per 365-day year at this bar interval."""
    return YEAR / interval


def compute_stats(
    equity: pd.Series,
    trades: pd.DataFrame,
    position_value: pd.Series,
    benchmark: pd.Series,
    interval: pd.Timedelta,
) -> dict[str, Any]:
    """Every metric of STATS_DOC, in its order.

    ``equity``, ``position_value`` (quote value of open positions) and ``benchmark``
    (buy-and-hold equity) share a UTC ``DatetimeIndex``; ``trades`` has one row per
    round trip with ``pnl_quote``, ``return_pct`` (NaN while open), ``fee_quote``,
    ``slippage_quote``, ``impact_quote`` and ``gas_quote``.
    """
    values = np.ascontiguousarray(equity.to_numpy(dtype=np.float64))
    stamps = equity.index
    per_year = periods_per_year(interval)
    duration = stamps[-1] - stamps[0]
    growth = values[-1] / values[0]
    years = duration / YEAR
    cagr = float(growth ** (1 / years) - 1) if years > 0 and growth > 0 else math.nan
    mean_return, volatility, downside, peak, drawdown, longest = _curve_stats(values, stamps.asi8)
    closed = trades[trades["return_pct"].notna()]
    pnl = closed["pnl_quote"].to_numpy(dtype=float)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    stats: dict[str, Any] = {
        "Start": stamps[0].isoformat(),
        "End": stamps[-1].isoformat(),
        "Duration [days]": duration / pd.Timedelta(days=1),
        "Bars": len(values),
        "Periods per Year": per_year,
        "Initial Equity [quote]": float(values[0]),
        "Final Equity [quote]": float(values[-1]),
        "Peak Equity [quote]": float(peak),
        "Return [%]": (growth - 1) * 100,
        "Buy & Hold Return [%]": (benchmark.iloc[-1] / benchmark.iloc[0] - 1) * 100,
        "CAGR [%]": cagr * 100,
        "Volatility (Ann.) [%]": volatility * math.sqrt(per_year) * 100,
        "Sharpe Ratio": _ratio(mean_return, volatility) * math.sqrt(per_year),
        "Sortino Ratio": _ratio(mean_return, downside) * math.sqrt(per_year),
        "Calmar Ratio": _ratio(cagr, abs(drawdown)),
        "Max. Drawdown [%]": drawdown * 100,
        "Max. Drawdown Duration [days]": longest / DAY_NS,
        "# Trades": len(closed),
        "Open Trades": len(trades) - len(closed),
        "Win Rate [%]": _ratio(len(wins), len(pnl)) * 100,
        "Avg. Win [quote]": _mean(wins),
        "Avg. Loss [quote]": _mean(losses),
        "Best Trade [%]": float(closed["return_pct"].max()) if len(closed) else math.nan,
        "Worst Trade [%]": float(closed["return_pct"].min()) if len(closed) else math.nan,
        "Profit Factor": _profit_factor(wins.sum(), -losses.sum()),
        "Expectancy [quote]": _mean(pnl),
        "Exposure Time [%]": np.count_nonzero(position_value.to_numpy() > 0) / len(values) * 100,
        "Fees Paid [quote]": float(trades["fee_quote"].sum()),
        "Slippage Paid [quote]": float(trades["slippage_quote"].sum()),
        "Price Impact Paid [quote]": float(trades["impact_quote"].sum()),
        "Gas Paid [quote]": float(trades["gas_quote"].sum()),
    }
    return stats


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _ratio(numerator: float, denominator: float) -> float:
    if denominator == 0 or math.isnan(denominator) or math.isnan(numerator):
        return math.nan
    return numerator / denominator


def _profit_factor(gross_profit: float, gross_loss: float) -> float:
    if gross_loss > 0:
        return float(gross_profit / gross_loss)
    return math.inf if gross_profit > 0 else math.nan


@numba.njit(cache=True, nogil=True)
def _curve_stats(values, stamps_ns):
    """One equity curve's return and drawdown statistics.

    Returns (mean per-bar return, its sample std, downside deviation, peak equity,
    deepest drawdown as a fraction <= 0, longest drawdown in ns); NaN where a
    statistic needs more returns than there are. The variance takes a second pass
    over the returns around their mean, which keeps it exact to rounding.
    """
    n = len(values)
    total = 0.0
    downside = 0.0
    peak = values[0]
    peak_at = 0
    deepest = 0.0
    longest = 0
    for t in range(1, n):
        r = values[t] / values[t - 1] - 1.0
        total += r
        if r < 0.0:
            downside += r * r
        if values[t] >= peak:
            # Back at or above the peak: a drawdown (if any) ends on this bar.
            if t > peak_at + 1:
                longest = max(longest, stamps_ns[t] - stamps_ns[peak_at])
            peak = values[t]
            peak_at = t
        else:
            deepest = min(deepest, values[t] / peak - 1.0)
    if values[n - 1] < peak:
        longest = max(longest, stamps_ns[n - 1] - stamps_ns[peak_at])
    mean = total / (n - 1) if n > 1 else np.nan
    spread = 0.0
    for t in range(1, n):
        spread += (values[t] / values[t - 1] - 1.0 - mean) ** 2
    std = np.sqrt(spread / (n - 2)) if n > 2 else np.nan
    downside = np.sqrt(downside / (n - 1)) if n > 1 else np.nan
    return mean, std, downside, peak, deepest, longest
