"""Backtest metrics on hand-computed cases; every key documented."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from strategies.metrics import STATS_DOC, compute_stats, periods_per_year

DAYS = pd.date_range("2024-01-01", periods=5, freq="1D", tz="UTC")
EQUITY = [100.0, 120.0, 90.0, 135.0, 108.0]


def trade_table(pnl, returns, fees=None):
    count = len(pnl)
    return pd.DataFrame({
        "pnl_quote": pnl,
        "return_pct": returns,
        "fee_quote": fees if fees is not None else [1.0] * count,
        "slippage_quote": [0.5] * count,
        "impact_quote": [0.25] * count,
        "gas_quote": [2.0] * count,
    })


def stats_of(equity=EQUITY, trades=None, position=(0, 50, 50, 0, 10), benchmark=(100, 100, 100, 100, 150),
             index=DAYS, interval=pd.Timedelta(days=1)):
    if trades is None:
        trades = trade_table([10.0, -5.0, 20.0, -2.5, math.nan], [10.0, -5.0, 20.0, -2.5, math.nan])
    return compute_stats(pd.Series(equity, index=index), trades, pd.Series(position, index=index),
                         pd.Series(benchmark, index=index), interval)


def test_every_metric_by_hand():
    stats = stats_of()
    # Returns: +20%, -25%, +50%, -20%; mean 0.0625; squared deviations from it sum to
    # 0.376875, so the sample variance is 0.125625.
    std = math.sqrt(0.125625)
    downside = math.sqrt((0.25**2 + 0.2**2) / 4)
    cagr = 1.08 ** (365 / 4) - 1
    expected = {
        "Start": "2024-01-01T00:00:00+00:00",
        "End": "2024-01-05T00:00:00+00:00",
        "Duration [days]": 4.0,
        "Bars": 5,
        "Periods per Year": 365.0,
        "Initial Equity [quote]": 100.0,
        "Final Equity [quote]": 108.0,
        "Peak Equity [quote]": 135.0,
        "Return [%]": 8.0,
        "Buy & Hold Return [%]": 50.0,
        "CAGR [%]": cagr * 100,
        "Volatility (Ann.) [%]": std * math.sqrt(365) * 100,
        "Sharpe Ratio": 0.0625 / std * math.sqrt(365),
        "Sortino Ratio": 0.0625 / downside * math.sqrt(365),
        "Calmar Ratio": cagr / 0.25,
        # 120 -> 90 is -25%; 135 -> 108 is -20%.
        "Max. Drawdown [%]": -25.0,
        # Peak on day 1, back above it on day 3: 2 days; from day 3 to the end: 1 day.
        "Max. Drawdown Duration [days]": 2.0,
        "# Trades": 4,
        "Open Trades": 1,
        "Win Rate [%]": 50.0,
        "Avg. Win [quote]": 15.0,
        "Avg. Loss [quote]": -3.75,
        "Best Trade [%]": 20.0,
        "Worst Trade [%]": -5.0,
        "Profit Factor": 30 / 7.5,
        "Expectancy [quote]": 22.5 / 4,
        "Exposure Time [%]": 60.0,
        "Fees Paid [quote]": 5.0,
        "Slippage Paid [quote]": 2.5,
        "Price Impact Paid [quote]": 1.25,
        "Gas Paid [quote]": 10.0,
    }
    assert list(stats) == list(expected)
    for key, value in expected.items():
        assert stats[key] == (value if isinstance(value, (str, int)) else pytest.approx(value, rel=1e-12)), key


def test_every_key_is_documented():
    assert set(stats_of()) == set(STATS_DOC)
    assert all(doc.strip() for doc in STATS_DOC.values())


def test_drawdown_that_never_recovers_lasts_to_the_end():
    stats = stats_of(equity=[100, 90, 95, 99, 98])
    assert stats["Max. Drawdown [%]"] == pytest.approx(-10.0)
    assert stats["Max. Drawdown Duration [days]"] == 4.0


def test_longest_drawdown_is_not_always_the_deepest():
    index = pd.date_range("2024-01-01", periods=7, freq="1D", tz="UTC")
    stats = stats_of(equity=[100, 50, 100, 99, 99, 99, 100.5], position=[0] * 7, benchmark=[1] * 7, index=index)
    assert stats["Max. Drawdown [%]"] == pytest.approx(-50.0)
    assert stats["Max. Drawdown Duration [days]"] == 4.0  # day 2 -> day 6, not the 2-day 50% dip


def test_flat_equity_and_no_trades():
    stats = stats_of(equity=[100.0] * 5, trades=trade_table([], []), position=[0] * 5)
    assert stats["Return [%]"] == 0.0
    assert stats["Volatility (Ann.) [%]"] == 0.0
    assert stats["Max. Drawdown [%]"] == 0.0
    assert stats["Max. Drawdown Duration [days]"] == 0.0
    assert stats["# Trades"] == 0
    for key in ("Sharpe Ratio", "Sortino Ratio", "Calmar Ratio", "Win Rate [%]", "Avg. Win [quote]",
                "Avg. Loss [quote]", "Best Trade [%]", "Worst Trade [%]", "Profit Factor", "Expectancy [quote]"):
        assert math.isnan(stats[key]), key
    assert stats["Fees Paid [quote]"] == 0.0


def test_profit_factor_without_losses_is_infinite():
    stats = stats_of(trades=trade_table([5.0, 0.0], [5.0, 0.0]))
    assert stats["Profit Factor"] == math.inf
    assert stats["Win Rate [%]"] == 50.0  # a break-even trade is not a win
    assert math.isnan(stats["Avg. Loss [quote]"])


def test_cagr_is_undefined_when_equity_is_gone():
    stats = stats_of(equity=[100, 50, 10, 5, -1])
    assert math.isnan(stats["CAGR [%]"])
    assert math.isnan(stats["Calmar Ratio"])


def test_two_bars_have_no_sample_deviation():
    index = DAYS[:2]
    stats = stats_of(equity=[100, 101], position=[0, 0], benchmark=[1, 1], index=index)
    assert stats["Return [%]"] == pytest.approx(1.0)
    assert math.isnan(stats["Sharpe Ratio"])
    assert stats["Sortino Ratio"] != stats["Sortino Ratio"]  # no losing bar: NaN


@pytest.mark.parametrize("interval, expected", [("1D", 365), ("1h", 8760), ("15min", 35040), ("7D", 365 / 7)])
def test_periods_per_year_counts_365_day_years(interval, expected):
    assert periods_per_year(pd.Timedelta(interval)) == pytest.approx(expected)


def test_hourly_bars_annualise_with_8760():
    index = pd.date_range("2024-01-01", periods=5, freq="1h", tz="UTC")
    hourly = stats_of(index=index, interval=pd.Timedelta(hours=1))
    daily = stats_of()
    assert hourly["Sharpe Ratio"] == pytest.approx(daily["Sharpe Ratio"] * math.sqrt(24))
    assert hourly["Max. Drawdown Duration [days]"] == pytest.approx(2 / 24)


def test_matches_numpy_on_a_long_random_curve():
    rng = np.random.default_rng(4)
    values = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 100_000)))
    index = pd.date_range("2024-01-01", periods=len(values), freq="1min", tz="UTC")
    zeros = pd.Series(0.0, index=index)
    stats = compute_stats(pd.Series(values, index=index), trade_table([], []), zeros, zeros + 1,
                          pd.Timedelta(minutes=1))
    returns = values[1:] / values[:-1] - 1
    per_year = 365 * 24 * 60
    assert stats["Sharpe Ratio"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(per_year), rel=1e-9)
    assert stats["Max. Drawdown [%]"] == pytest.approx((values / np.maximum.accumulate(values) - 1).min() * 100)
