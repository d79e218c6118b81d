"""The user backtest models the user's protective exits as the keeper executes them: at
each bar, before any strategy decision, a trigger that holds at the bar's close sells the
user's whole balance of the token (the user's own deposit too) through the bar's pool,
once; the trailing stop's high-water mark is the highest close since the start (or the
last BUY, from the next bar on); a BUY where the stop-loss or take-profit holds is
stopped as the Executor refuses it; the oracle floor applies and the loss budget never
refuses an exit."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from fixtures_backtest import FixedSignals

from strategies.engine import BUY, EXIT_PROTECTION, SELL, UserLimits
from strategies.exits import Protection
from strategies.risk import RiskLimits
from strategies.user_backtest import UserBacktestSetup, amount_out, constant_product_pools, run_user_backtest

USD = 10**18
USDC, WETH = 10**6, 10**18
DECIMALS = {"USDC": 6, "WETH": 18}
NO_RULES = RiskLimits(cooldown=None, max_trades=None, max_daily_loss_quote=None, max_losses=None, max_failures=None)
DEPTH, SEED = 2_000_000, {"WETH": 2_000.0}


def closes(prices: list[float]) -> pd.DataFrame:
    index = pd.date_range(datetime(2024, 3, 1, tzinfo=UTC), periods=len(prices), freq="1D")
    return pd.DataFrame({"ETH": prices}, index=index)


def backtest(prices: list[float], protection: Protection | None, actions: tuple[int, ...] | None = None,
             deposit_weth: float = 2, slippage_bps: int = 100, loss_budget_usd: float = 1_000,
             kill_switch: float | None = None):
    """One user trading WETH with fixed actions (decided on bar i - 1, filled at bar i)."""
    limits = UserLimits(quote="USDC", quote_amount=1_000 * USDC, vault_share=None,
                        max_per_trade={"USDC": 10**12, "WETH": 10**24}, kill_switch_drawdown=kill_switch,
                        protections={} if protection is None else {"WETH": protection})
    setup = UserBacktestSetup(
        tokens=["WETH"], strategies={"WETH": [FixedSignals(actions=actions or (0,) * len(prices))]}, limits=limits,
        risk=NO_RULES, balances={"USDC": 10_000 * USDC, "WETH": int(deposit_weth * WETH)}, decimals=DECIMALS,
        max_slippage_bps=slippage_bps, daily_loss_budget_usd=loss_budget_usd)
    return run_user_backtest(setup, closes(prices), {"WETH": "ETH"}, constant_product_pools(DEPTH, SEED, "USDC",
                                                                                            DECIMALS))


def exits(result) -> pd.DataFrame:
    return result.fills[result.fills["strategy"] == "exit"].reset_index(drop=True)


def pool_pays(weth: int, price: float) -> int:
    """What the backtest's untouched pool at ``price`` pays for ``weth`` base units."""
    quote_reserve, token_reserve = constant_product_pools(DEPTH, SEED, "USDC", DECIMALS)("WETH", price)
    return amount_out(weth, token_reserve, quote_reserve)


PRICES = [2_000.0, 1_900.0, 1_800.0, 1_700.0, 1_650.0, 1_600.0, 1_750.0, 1_500.0]


def test_a_stop_loss_sells_the_whole_balance_own_deposit_included_at_the_first_bar_at_or_below_once():
    # BUY decided on bar 0, filled at bar 1: 1,000 USDC of WETH beside the user's own 2 WETH.
    result = backtest(PRICES, Protection(stop_loss_e18=1_700 * USD), actions=(1, 0, 0, 0, 0, 0, 0, 0))
    bought = int(result.fills["amount_out"].iloc[0])
    assert list(result.fills["strategy"]) == ["test_fixed", "exit"]
    exit_ = exits(result).iloc[0]
    assert exit_["time"] == closes(PRICES).index[3]  # 1,700: at the stop, not only below it
    assert (exit_["token"], exit_["side"], exit_["exit_trigger"]) == ("WETH", SELL, "stop_loss")
    assert exit_["amount_in"] == 2 * WETH + bought
    assert exit_["amount_out"] == pool_pays(2 * WETH + bought, 1_700.0)
    # Spent: the price stays below the stop, and nothing is left to sell anyway; the vault
    # is all USDC from the exit on.
    assert result.value_quote.iloc[4:].nunique() == 1
    assert result.value_quote.iloc[4] == pytest.approx(10_000 - 1_000 + exit_["amount_out"] / USDC)


def test_an_exit_can_trigger_at_the_first_bar_before_any_strategy_decides():
    result = backtest([1_500.0, 1_600.0, 1_700.0], Protection(stop_loss_e18=1_500 * USD))
    assert list(exits(result)["time"]) == [closes([1.0]).index[0]]
    assert exits(result)["amount_in"].iloc[0] == 2 * WETH


def test_a_take_profit_exits_at_the_first_bar_at_or_above():
    result = backtest([2_000.0, 2_200.0, 2_399.99, 2_400.0, 2_600.0], Protection(take_profit_e18=2_400 * USD))
    assert list(exits(result)["exit_trigger"]) == ["take_profit"]
    assert exits(result)["time"].iloc[0] == closes([1.0] * 4).index[3]


def test_a_trailing_stop_of_15_percent_exits_at_the_first_close_15_percent_below_the_high_since_the_start():
    # The high is 2,500 (bar 2); 15% below it is 2,125 exactly.
    prices = [2_000.0, 2_200.0, 2_500.0, 2_300.0, 2_125.01, 2_400.0, 2_125.0, 1_000.0]
    result = backtest(prices, Protection(trailing_bps=1_500))
    assert list(exits(result)["exit_trigger"]) == ["trailing_stop"]
    assert exits(result)["time"].iloc[0] == closes(prices).index[6]
    assert exits(result)["amount_out"].iloc[0] == pool_pays(2 * WETH, 2_125.0)


def test_a_buy_restarts_the_trailing_mark_from_the_next_bar():
    trailing = Protection(trailing_bps=1_000)
    prices = [3_000.0, 2_900.0, 2_800.0, 2_750.0, 2_700.0, 2_500.0, 2_475.0]
    # Held from the start: 2,700 is 10% below the first close's 3,000.
    assert exits(backtest(prices, trailing))["time"].iloc[0] == closes(prices).index[4]
    # A BUY filled at bar 2 (2,800) starts the protection again after that bar's round: the
    # high is 2,750 (bar 3), so 2,500 (within 10% of it, not of 2,800) holds and 2,475 exits.
    restarted = backtest(prices, trailing, actions=(0, 1, 0, 0, 0, 0, 0))
    assert restarted.fills["side"].iloc[0] == BUY and restarted.fills["time"].iloc[0] == closes(prices).index[2]
    assert exits(restarted)["time"].iloc[0] == closes(prices).index[6]


def test_a_buy_where_the_stop_loss_holds_is_stopped_and_fills_once_the_price_is_above_it():
    # No WETH held, so nothing to exit: BUYs decided on every bar, filled from bar 1 on.
    prices = [1_600.0, 1_400.0, 1_500.0, 1_600.0]
    result = backtest(prices, Protection(stop_loss_e18=1_500 * USD), actions=(1, 1, 1, 0), deposit_weth=0)
    assert list(result.blocks["rule"]) == [EXIT_PROTECTION, EXIT_PROTECTION]
    assert list(result.blocks["time"]) == list(closes(prices).index[1:3])
    assert "ExecutorBuyTriggersExit" in result.blocks["reason"].iloc[0]
    assert list(result.fills["time"]) == [closes(prices).index[3]] and exits(result).empty


def test_no_risk_lock_stops_an_exit_the_kill_switch_included():
    # 14,000 at the start; 2 x 1,800 + 10,000 = 13,600 is 2.9% below: the kill switch engages at bar 2.
    result = backtest(PRICES, Protection(stop_loss_e18=1_700 * USD), actions=(0, 1, 1, 1, 1, 1, 1, 1),
                      kill_switch=0.025)
    assert (result.blocks["rule"].iloc[0], result.blocks["time"].iloc[0]) == ("kill_switch", closes(PRICES).index[2])
    assert result.fills["strategy"].tolist() == ["exit"]  # no strategy trades once it engaged
    assert list(exits(result)["time"]) == [closes(PRICES).index[3]]


def test_the_loss_budget_never_refuses_an_exit_but_the_oracle_floor_does():
    stop = Protection(stop_loss_e18=1_700 * USD)
    unbudgeted = backtest(PRICES, stop, loss_budget_usd=0)
    assert list(exits(unbudgeted)["time"]) == [closes(PRICES).index[3]] and unbudgeted.failures.empty
    # At 0 bps of slippage the pool's fee alone is below the floor: the exit fails and stays
    # live, tried again at every bar while the stop holds.
    floored = backtest(PRICES, stop, slippage_bps=0)
    assert exits(floored).empty
    assert list(floored.failures["strategy"]) == ["exit"] * 4
    assert list(floored.failures["time"]) == [closes(PRICES).index[i] for i in (3, 4, 5, 7)]


def test_a_buy_starts_a_spent_stop_loss_again():
    prices = [2_000.0, 1_700.0, 1_800.0, 1_900.0, 1_650.0, 1_600.0]
    result = backtest(prices, Protection(stop_loss_e18=1_700 * USD), actions=(0, 0, 1, 0, 0, 0))
    assert list(zip(result.fills["time"], result.fills["strategy"], strict=True)) == [
        (closes(prices).index[1], "exit"), (closes(prices).index[3], "test_fixed"), (closes(prices).index[4], "exit")]
    assert exits(result)["amount_in"].iloc[1] == result.fills["amount_out"].iloc[1]  # only what the BUY bought


def test_no_protection_sells_nothing_and_the_exits_are_reproducible():
    assert exits(backtest(PRICES, None)).empty
    assert exits(backtest(PRICES, Protection(bounty_bps=100))).empty  # no trigger set
    prices = list(2_000 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.03, 60))))
    actions = tuple(int(a) for a in np.random.default_rng(6).choice([-1, 0, 1], size=60))
    protection = Protection(stop_loss_e18=1_500 * USD, trailing_bps=800)
    first, second = backtest(prices, protection, actions), backtest(prices, protection, actions)
    assert not exits(first).empty
    pd.testing.assert_frame_equal(first.fills, second.fills)
    pd.testing.assert_series_equal(first.value_quote, second.value_quote)
