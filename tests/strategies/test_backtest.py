"""The backtest engine: hand-computed cases, the position model, and differential
tests against the plain per-bar reference loop in fixtures_backtest."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from fixtures_backtest import (
    FixedSignals,
    ScriptedSignals,
    SmaCross,
    assert_close,
    price_data,
    random_walk,
    reference_backtest,
    reference_stats,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies.backtest import (
    BacktestConfig,
    BacktestError,
    TradeSize,
    run_backtest,
    run_grid,
)
from strategies.data import load_prices
from strategies.metrics import BREAKDOWN_DOC, STATS_DOC
from strategies.registry import build_strategy, list_strategies
from strategies.risk import RiskLimits

OPENS = [100, 100, 110, 120, 90, 100, 100, 80]
CLOSES = [100, 105, 115, 100, 95, 100, 90, 80]
ACTIONS = (1, 0, -1, 1, -1, 1, -1, 0)
NO_COSTS = dict(fee_bps=0.0, slippage_bps=0.0)


def run_fixed(actions=ACTIONS, opens=OPENS, closes=CLOSES, **config):
    data = price_data({"TKN": closes}, {"TKN": opens})
    return run_backtest(data, FixedSignals(actions=actions), BacktestConfig(**config))


# ---------------------------------------------------------------- hand-computed


def test_three_trades_with_a_fee__by_hand():
    result = run_fixed(initial_balance=1000, fee_bps=100, slippage_bps=0)
    trades = result.trades
    # Trade 1: signal bar 0, fill bar 1 open 100: fee 10, 990 / 100 = 9.9 tokens.
    #   Sell fill bar 3 open 120: 9.9 * 120 = 1188, fee 11.88, proceeds 1176.12.
    # Trade 2: 1176.12 budget, fee 11.7612, 1164.3588 / 90 = 12.93732 tokens;
    #   sells at 100: 1293.732, fee 12.93732, proceeds 1280.79468.
    # Trade 3: 1280.79468 budget, fee 12.8079468, 1267.9867332 / 100 = 12.679867332;
    #   sells at 80: 1014.38938656, fee 10.1438938656, proceeds 1004.2454926944.
    assert list(trades["size_tokens"]) == pytest.approx([9.9, 12.93732, 12.679867332])
    assert list(trades["pnl_quote"]) == pytest.approx([176.12, 104.67468, -276.5491873056])
    assert list(trades["entry_price"]) == pytest.approx([100, 90, 100])
    assert list(trades["exit_price"]) == pytest.approx([120, 100, 80])
    assert list(trades["bars_held"]) == [2, 1, 1]
    assert list(trades["fee_quote"]) == pytest.approx([21.88, 24.69852, 22.9518406656])
    equity = [1000, 9.9 * 105, 9.9 * 115, 1176.12, 12.93732 * 95, 1280.79468, 12.679867332 * 90, 1004.2454926944]
    assert result.equity.to_numpy() == pytest.approx(equity)
    stats = result.stats
    assert stats["# Trades"] == 3
    assert stats["Win Rate [%]"] == pytest.approx(200 / 3)
    assert stats["Avg. Win [quote]"] == pytest.approx((176.12 + 104.67468) / 2)
    assert stats["Avg. Loss [quote]"] == pytest.approx(-276.5491873056)
    assert stats["Profit Factor"] == pytest.approx((176.12 + 104.67468) / 276.5491873056)
    assert stats["Expectancy [quote]"] == pytest.approx((176.12 + 104.67468 - 276.5491873056) / 3)
    assert stats["Best Trade [%]"] == pytest.approx(17.612)
    assert stats["Worst Trade [%]"] == pytest.approx(-276.5491873056 / 1280.79468 * 100)
    assert stats["Fees Paid [quote]"] == pytest.approx(21.88 + 24.69852 + 22.9518406656)
    # Held at the close of bars 1, 2, 4 and 6 of 8.
    assert stats["Exposure Time [%]"] == pytest.approx(50.0)
    assert stats["Return [%]"] == pytest.approx(0.42454926944)
    assert stats["Buy & Hold Return [%]"] == pytest.approx(-20.0)


def test_slippage_gas_and_fixed_size__by_hand():
    result = run_fixed((1, 0, -1, 0, 0, 0, 0, 0), initial_balance=1000, trade_size=TradeSize(500, False),
                       fee_bps=0, slippage_bps=100, gas_quote=2)
    trade = result.trades.iloc[0]
    # BUY 500 at 100 * 1.01 = 101: 4.9504950495 tokens; cash 1000 - 500 - 2 = 498.
    # SELL at 120 * 0.99 = 118.8: 588.11881188; minus gas 2.
    assert trade["size_tokens"] == pytest.approx(500 / 101)
    assert trade["entry_price"] == pytest.approx(101)
    assert trade["exit_price"] == pytest.approx(118.8)
    assert trade["entry_quote"] == pytest.approx(502)
    assert trade["exit_quote"] == pytest.approx(500 / 101 * 118.8 - 2)
    assert trade["pnl_quote"] == pytest.approx(500 / 101 * 118.8 - 2 - 502)
    # Slippage valued at the reference price: 500 - 4.9504950495 * 100 on entry,
    # 4.9504950495 * (120 - 118.8) on exit.
    assert trade["slippage_quote"] == pytest.approx(500 - 500 / 101 * 100 + 500 / 101 * 1.2)
    assert trade["gas_quote"] == 4
    assert result.equity.iloc[-1] == pytest.approx(498 + 500 / 101 * 118.8 - 2)
    assert result.stats["Gas Paid [quote]"] == 4


def test_amm_price_impact__by_hand():
    # Pool of 10,000 quote and 100 tokens at price 100; buy with 1,000 quote, no fee_bps.
    result = run_fixed((1, -1, 0), opens=[100, 100, 100], closes=[100, 100, 100],
                       initial_balance=1000, pool_depth_quote=10_000, **NO_COSTS)
    trade = result.trades.iloc[0]
    tokens = 997 * 100 / (10_000 * 1000 / 1000 + 997)  # getAmountOut: 1000*997*100 / (10000*1000 + 997*1000)
    assert trade["size_tokens"] == pytest.approx(tokens)  # 9.0661...
    # Selling them back: 0.997 * tokens into (100 token, 10,000 quote).
    back = 0.997 * tokens * 10_000 / (100 + 0.997 * tokens)
    assert trade["exit_quote"] == pytest.approx(back)
    assert trade["fee_quote"] == pytest.approx(3 + 0.003 * tokens * 100)
    assert trade["impact_quote"] == pytest.approx((997 - tokens * 100) + (0.997 * tokens * 100 - back))
    assert trade["fee_quote"] + trade["impact_quote"] == pytest.approx(1000 - back)


def test_fill_at_close_uses_the_next_bars_close():
    result = run_fixed(initial_balance=1000, fill_at="close", **NO_COSTS)
    # Fills on bars 1, 3, 5, 7 at their closes: 105 -> 100, 100 -> 80.
    assert list(result.trades["entry_price"]) == pytest.approx([105, 95, 90])
    assert list(result.trades["exit_price"]) == pytest.approx([100, 100, 80])
    assert result.equity.iloc[1] == pytest.approx(1000)  # bought at the close it is marked at


def test_a_signal_never_fills_on_its_own_bar():
    closes = [100, 100, 200, 200, 200]
    result = run_fixed((0, 0, 1, 0, 0), opens=closes, closes=closes, initial_balance=1000, **NO_COSTS)
    # The BUY seen at bar 2's close (200) fills at bar 3's open (200): no jump is caught.
    assert result.trades["entry_time"].iloc[0] == result.equity.index[3]
    assert result.equity.iloc[-1] == pytest.approx(1000)


def test_last_bar_signal_is_not_filled_and_open_position_is_marked():
    result = run_fixed((1, 0, 0, -1), opens=[10, 10, 10, 10], closes=[10, 12, 15, 14],
                       initial_balance=100, **NO_COSTS)
    assert result.stats["# Trades"] == 0
    assert result.stats["Open Trades"] == 1
    assert math.isnan(result.trades["pnl_quote"].iloc[0])
    assert result.equity.iloc[-1] == pytest.approx(140)
    assert math.isnan(result.stats["Win Rate [%]"])


def test_buy_while_long_and_sell_while_flat_are_ignored():
    result = run_fixed((-1, 1, 1, 1, -1, -1, 0, 0), initial_balance=1000, **NO_COSTS)
    assert len(result.trades) == 1
    assert result.trades["entry_time"].iloc[0] == result.equity.index[2]
    assert result.trades["exit_time"].iloc[0] == result.equity.index[5]


def test_fraction_of_equity_sizes_from_the_sleeve_cash():
    result = run_fixed(initial_balance=1000, trade_size=TradeSize(0.25, True), **NO_COSTS)
    # 250 at 100 -> 2.5 tokens sold at 120 = 300: cash 1050; then 262.5 at 90.
    assert result.trades["entry_quote"].iloc[:2].tolist() == pytest.approx([250, 262.5])


def test_unaffordable_buy_is_counted_not_filled():
    result = run_fixed(initial_balance=10, gas_quote=10, trade_size=TradeSize(5, False), **NO_COSTS)
    assert len(result.trades) == 0
    assert result.sleeves[0].unaffordable == 3


def test_every_fill_balances_costs_and_value():
    data = price_data({"TKN": random_walk(np.random.default_rng(3), 300)[0]})
    config = BacktestConfig(fill_at="close", fee_bps=25, slippage_bps=15, pool_depth_quote=50_000, gas_quote=1)
    result = run_backtest(data, ScriptedSignals(seed=5, p_signal=0.3), config)
    fills = result.sleeves[0].fills
    from strategies.backtest import FEE, IMPACT, PRICE, QUOTE, SIDE, SLIPPAGE, TOKENS
    costs = fills[:, FEE] + fills[:, IMPACT] + fills[:, SLIPPAGE]
    value = fills[:, TOKENS] * fills[:, PRICE]
    buys, sells = fills[:, SIDE] == 1, fills[:, SIDE] == -1
    assert buys.sum() > 5 and sells.sum() > 5
    assert fills[buys, QUOTE] == pytest.approx(costs[buys] + value[buys])
    assert value[sells] == pytest.approx(costs[sells] + fills[sells, QUOTE])


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(initial_balance=0), "initial balance must be positive"),
        (dict(fee_bps=-1), "fee must be in"),
        (dict(slippage_bps=10_000), "slippage must be in"),
        (dict(gas_quote=-1), "gas cost must not be negative"),
        (dict(fill_at="mid"), "fill_at must be"),
        (dict(pool_depth_quote=0), "pool depth must be positive"),
        (dict(trade_size=TradeSize(1.5, True)), "more than 100%"),
    ],
)
def test_bad_config_is_one_line(kwargs, message):
    with pytest.raises(BacktestError, match=message) as err:
        BacktestConfig(**kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text, amount, fraction", [("1000", 1000, False), ("25%", 0.25, True), (" 100% ", 1, True)])
def test_trade_size_parses(text, amount, fraction):
    assert TradeSize.parse(text) == TradeSize(amount, fraction)


@pytest.mark.parametrize("text", ["abc", "-5", "0%", "150%", "nan"])
def test_bad_trade_size_is_rejected(text):
    with pytest.raises(BacktestError):
        TradeSize.parse(text)


def test_fill_at_open_needs_an_open_column():
    data = price_data({"TKN": CLOSES})
    with pytest.raises(BacktestError, match="no open column.*--fill-at close"):
        run_backtest(data, FixedSignals(actions=ACTIONS))


def test_a_strategy_with_the_wrong_signal_length_is_rejected():
    data = price_data({"TKN": CLOSES}, {"TKN": OPENS})
    with pytest.raises(BacktestError, match="returned 3 signals for 8 bars"):
        run_backtest(data, FixedSignals(actions=(1, 0, -1)))


# ---------------------------------------------------------------- differential


def compare_with_reference(data, strategies, config, rules=None):
    result = run_backtest(data, strategies, config)
    trades, equity, position_value, benchmark, blocked = reference_backtest(data, strategies, config, rules)
    assert len(result.trades) == len(trades)
    engine_trades = result.trades.sort_values(["entry_time", "strategy", "token"], kind="stable")
    reference = sorted(trades, key=lambda t: (t["entry_time"], t["strategy"], t["token"]))
    for (_, row), expected in zip(engine_trades.iterrows(), reference):
        for key, value in expected.items():
            if key == "entry_bar":
                continue
            if key.endswith("_time"):
                assert row[key] == value, key
            else:
                assert_close(row[key], value, key)
    np.testing.assert_allclose(result.equity.to_numpy(), equity, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(result.position_value.to_numpy(), position_value, rtol=1e-9, atol=1e-9)
    index = next(iter(data.bars.values())).index
    expected_stats = reference_stats(index, equity, position_value, benchmark, trades, data.interval)
    for key, value in expected_stats.items():
        assert_close(result.stats[key], value, key, rel=1e-7)
    assert result.blocked == blocked
    return result


configs = st.builds(
    BacktestConfig,
    initial_balance=st.floats(100, 1e6),
    trade_size=st.one_of(
        st.builds(TradeSize, st.floats(0.05, 1.0), st.just(True)),
        st.builds(TradeSize, st.floats(1, 5e5), st.just(False)),
    ),
    fee_bps=st.floats(0, 100),
    slippage_bps=st.floats(0, 100),
    pool_depth_quote=st.one_of(st.none(), st.floats(1e3, 1e8)),
    gas_quote=st.one_of(st.just(0.0), st.floats(0, 20)),
    fill_at=st.sampled_from(["open", "close"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 250), p_signal=st.floats(0.0, 1.0), config=configs)
def test_engine_matches_reference_on_random_paths(seed, n, p_signal, config):
    rng = np.random.default_rng(seed)
    close, open_ = random_walk(rng, n)
    data = price_data({"TKN": close}, {"TKN": open_})
    compare_with_reference(data, [ScriptedSignals(seed=seed, p_signal=p_signal)], config)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), config=configs, fast=st.integers(2, 6), slow=st.integers(7, 20))
def test_engine_matches_reference_on_several_tokens_and_strategies(seed, config, fast, slow):
    rng = np.random.default_rng(seed)
    walks = {token: random_walk(rng, 120) for token in ("AAA", "BBB", "CCC")}
    data = price_data({t: w[0] for t, w in walks.items()}, {t: w[1] for t, w in walks.items()})
    strategies = [SmaCross(fast=fast, slow=slow), ScriptedSignals(seed=seed, p_signal=0.3)]
    result = compare_with_reference(data, strategies, config)
    assert set(result.stats["By Token"]) == {"AAA", "BBB", "CCC"}
    assert set(result.stats["By Strategy"]) == {"test_sma_cross", "test_scripted"}
    # Each breakdown group is the reference run on that group alone, with the same capital.
    group = price_data({"BBB": walks["BBB"][0]}, {"BBB": walks["BBB"][1]})
    scaled = BacktestConfig(**{**config.__dict__, "initial_balance": config.initial_balance / 3})
    alone = run_backtest(group, strategies, scaled)
    for key in STATS_DOC:
        assert_close(result.stats["By Token"]["BBB"][key], alone.stats[key], key, rel=1e-9)


risk_limits = st.builds(
    RiskLimits,
    cooldown=st.one_of(st.none(), st.integers(1, 6).map(lambda d: timedelta(days=d))),
    max_trades=st.one_of(st.none(), st.integers(1, 6)),
    max_trades_window=st.integers(1, 20).map(lambda d: timedelta(days=d)),
    max_daily_loss_quote=st.one_of(st.none(), st.floats(1, 500)),
    max_losses=st.one_of(st.none(), st.integers(1, 4)),
    loss_pause=st.integers(1, 10).map(lambda d: timedelta(days=d)),
)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), config=configs, limits=risk_limits)
def test_engine_with_risk_rules_matches_reference(seed, config, limits):
    rng = np.random.default_rng(seed)
    walks = {token: random_walk(rng, 150) for token in ("AAA", "BBB")}
    data = price_data({t: w[0] for t, w in walks.items()}, {t: w[1] for t, w in walks.items()})
    config = BacktestConfig(**{**config.__dict__, "risk": limits})
    strategies = [ScriptedSignals(seed=seed, p_signal=0.5)]
    compare_with_reference(data, strategies, config, limits.rules())


def test_risk_rules_block_signals_and_are_counted():
    rng = np.random.default_rng(7)
    data = price_data({"TKN": random_walk(rng, 400)[0]})
    limits = RiskLimits(cooldown=timedelta(days=3), max_trades=None, max_daily_loss_quote=None, max_losses=None)
    config = BacktestConfig(fill_at="close", risk=limits)
    result = compare_with_reference(data, [ScriptedSignals(seed=1, p_signal=0.8)], config, limits.rules())
    assert result.blocked["cooldown"] > 10
    free = run_backtest(data, ScriptedSignals(seed=1, p_signal=0.8), BacktestConfig(fill_at="close"))
    assert len(result.trades) < len(free.trades)


def test_risk_path_equals_fast_path_when_no_rule_fires():
    data = price_data({"TKN": random_walk(np.random.default_rng(11), 300)[0]})
    quiet = RiskLimits(cooldown=None, max_trades=None, max_daily_loss_quote=None, max_losses=None)
    strategy = ScriptedSignals(seed=2, p_signal=0.4)
    fast = run_backtest(data, strategy, BacktestConfig(fill_at="close"))
    slow = run_backtest(data, strategy, BacktestConfig(fill_at="close", risk=quiet))
    np.testing.assert_array_equal(fast.equity.to_numpy(), slow.equity.to_numpy())
    assert fast.stats == slow.stats
    assert slow.blocked == {}


@pytest.fixture(scope="module")
def sample_data():
    return load_prices("data/sample_prices.csv")


@pytest.mark.parametrize("fast, slow", [(5, 20), (10, 50), (20, 100)])
@pytest.mark.parametrize("fill_at", ["open", "close"])
def test_engine_matches_reference_on_the_sample_data(sample_data, fast, slow, fill_at):
    config = BacktestConfig(fill_at=fill_at, fee_bps=30, slippage_bps=10, gas_quote=1.5)
    result = compare_with_reference(sample_data, [SmaCross(fast=fast, slow=slow)], config)
    assert result.stats["# Trades"] > 10


@pytest.mark.parametrize("info", list_strategies(), ids=lambda info: info.name)
@pytest.mark.parametrize("with_risk", [False, True])
def test_registry_strategies_match_reference_on_the_sample_data(sample_data, info, with_risk):
    limits = RiskLimits(cooldown=timedelta(days=3), max_losses=2) if with_risk else None
    config = BacktestConfig(fee_bps=20, slippage_bps=5, pool_depth_quote=5e6, risk=limits)
    result = compare_with_reference(sample_data, [build_strategy(info.id)], config, limits and limits.rules())
    assert result.stats["# Trades"] > 0


def test_sample_data_with_risk_matches_reference(sample_data):
    limits = RiskLimits(cooldown=timedelta(days=5), max_daily_loss_quote=50, max_losses=2)
    config = BacktestConfig(risk=limits)
    result = compare_with_reference(sample_data, [SmaCross(fast=3, slow=10)], config, limits.rules())
    assert sum(result.blocked.values()) > 0


def test_every_stats_key_of_a_run_is_documented(sample_data):
    result = run_backtest(sample_data, [SmaCross(), ScriptedSignals()])
    assert set(result.stats) == set(STATS_DOC) | set(BREAKDOWN_DOC)
    for group in (*result.stats["By Token"].values(), *result.stats["By Strategy"].values()):
        assert set(group) == set(STATS_DOC)


# ---------------------------------------------------------------- grid


@pytest.mark.parametrize("workers", [1, 2])
def test_grid_runs_every_point_and_keeps_the_best(sample_data, workers):
    calls = []
    grid = run_grid(sample_data, lambda params: SmaCross(**params), {"fast": [3, 5], "slow": [10, 20, 30]},
                    progress=lambda done, total: calls.append((done, total)), workers=workers)
    assert len(grid.table) == 6
    assert calls == [(done, 6) for done in range(1, 7)]
    assert grid.table[["fast", "slow"]].values.tolist() == [[3, 10], [3, 20], [3, 30], [5, 10], [5, 20], [5, 30]]
    best = grid.table.loc[grid.table["Sharpe Ratio"].idxmax()]
    assert grid.best_params == {"fast": best["fast"], "slow": best["slow"]}
    assert grid.best.stats["Sharpe Ratio"] == best["Sharpe Ratio"]
    for _, row in grid.table.iterrows():
        alone = run_backtest(sample_data, SmaCross(fast=row["fast"], slow=row["slow"]))
        assert alone.stats["Final Equity [quote]"] == row["Final Equity [quote]"]


def test_grid_validates_every_point_and_the_metric_before_running(sample_data):
    runs = []
    with pytest.raises(ValueError, match="greater than or equal to 2"):
        run_grid(sample_data, lambda params: SmaCross(**params), {"fast": [3, 1]},
                 progress=lambda done, total: runs.append(done))
    assert runs == []
    with pytest.raises(BacktestError, match="cannot rank by 'Profit'"):
        run_grid(sample_data, lambda params: SmaCross(**params), {"fast": [3]}, rank_by="Profit")
    with pytest.raises(BacktestError, match="grid is empty"):
        run_grid(sample_data, lambda params: SmaCross(**params), {"fast": []})


def test_tokens_with_different_date_ranges_share_one_timeline():
    data = price_data({"AAA": [10, 10, 20, 20]}, {"AAA": [10, 10, 20, 20]})
    later = price_data({"BBB": [5, 5, 5, 10]}, {"BBB": [5, 5, 5, 10]}, start="2024-01-03")
    both = type(data)({**data.bars, **later.bars}, data.interval, "<test>")
    result = run_backtest(both, FixedSignals(actions=(1, 0, 0, 0)), BacktestConfig(initial_balance=200, **NO_COSTS))
    # AAA buys 10 tokens at 10 on Jan 2 (worth 200 from Jan 3); BBB buys 20 at 5 on Jan 4
    # (worth 200 on Jan 6). Before Jan 3 BBB counts as its 100 cash, after Jan 4 AAA as its last 200.
    assert result.equity.index.equals(pd.date_range("2024-01-01", periods=6, freq="1D", tz="UTC"))
    assert result.equity.tolist() == pytest.approx([200, 200, 300, 300, 300, 400])
    assert result.benchmark.tolist() == pytest.approx([200, 200, 300, 300, 300, 400])
    assert result.stats["Return [%]"] == pytest.approx(100.0)
