"""The user state machine the keeper and the user backtest share: sizing, on-chain
limits, risk locks on the bar clock, the drawdown kill switch, and the user backtest
over it (deterministic, kill switch included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from strategies.base import Action, SignalFrame, Strategy, StrategyParams
from strategies.engine import (
    BUY,
    SELL,
    Blocked,
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
from strategies.risk import KILL_SWITCH, RiskLimits
from strategies.user_backtest import UserBacktestSetup, amount_out, constant_product_pools, run_user_backtest

DAY = timedelta(days=1)
T0 = datetime(2024, 3, 1, tzinfo=UTC)
USDC, WETH = 10**6, 10**18
NO_RULES = RiskLimits(cooldown=None, max_trades=None, max_daily_loss_quote=None, max_losses=None, max_failures=None)


def limits(**changes) -> UserLimits:
    fields = {"quote": "USDC", "quote_amount": 1_000 * USDC, "vault_share": None,
              "max_per_trade": {"USDC": 2_000 * USDC, "WETH": 5 * WETH}, "min_trade_interval_seconds": 0,
              "kill_switch_drawdown": None} | changes
    return UserLimits(**fields)


def decide(state, user_limits, action, balances, now=T0, last_trade_at=0):
    return choose(state, user_limits, "WETH", "macd", action, balances, now,
                  chain_time=int(now.timestamp()), last_trade_at=last_trade_at)


def test_a_buy_when_flat_is_sized_by_the_users_sizing_within_balance_and_the_onchain_maximum():
    state = UserState.fresh(NO_RULES)
    assert decide(state, limits(), Action.BUY, {"USDC": 5_000 * USDC, "WETH": 0}) == TradeIntent(
        "WETH", "macd", BUY, "USDC", "WETH", 1_000 * USDC)
    assert decide(state, limits(), Action.BUY, {"USDC": 600 * USDC, "WETH": 0}).amount_in == 600 * USDC
    share = limits(quote_amount=None, vault_share=0.5, max_per_trade={"USDC": 2_000 * USDC, "WETH": 5 * WETH})
    assert decide(state, share, Action.BUY, {"USDC": 10_000 * USDC, "WETH": 0}).amount_in == 2_000 * USDC
    assert decide(state, limits(), Action.SELL, {"USDC": 5_000 * USDC, "WETH": 3 * WETH}) is None  # nothing held
    assert decide(state, limits(), Action.HOLD, {"USDC": 5_000 * USDC, "WETH": 0}) is None


def test_a_sell_sells_what_the_sleeve_bought_capped_by_balance_and_the_onchain_maximum():
    state = UserState.fresh(NO_RULES)
    buy = TradeIntent("WETH", "macd", BUY, "USDC", "WETH", 1_000 * USDC)
    record_fill(state, buy, 1_000 * USDC, 7 * WETH, 6, T0)
    sell = decide(state, limits(), Action.SELL, {"USDC": 0, "WETH": 9 * WETH}, now=T0 + DAY)
    assert sell == TradeIntent("WETH", "macd", SELL, "WETH", "USDC", 5 * WETH)  # the user's maximum per trade
    assert decide(state, limits(), Action.BUY, {"USDC": 9_000 * USDC, "WETH": 9 * WETH}) is None  # not flat
    pnl, _ = record_fill(state, sell, 5 * WETH, 1_000 * USDC, 6, T0 + DAY)
    assert pnl == pytest.approx(1_000 - 1_000 * 5 / 7)
    assert state.holding("WETH", "macd") == 2 * WETH


def test_the_users_onchain_settings_stop_a_trade_with_a_named_rule():
    state = UserState.fresh(NO_RULES)
    refused = limits(max_per_trade={"USDC": 0, "WETH": 5 * WETH})
    assert decide(state, refused, Action.BUY, {"USDC": 5_000 * USDC, "WETH": 0}).rule == "no_allowance"
    assert decide(state, limits(), Action.BUY, {"USDC": 0, "WETH": 0}).rule == "no_balance"
    spaced = limits(min_trade_interval_seconds=3_600)
    now = T0 + timedelta(minutes=30)
    stopped = decide(state, spaced, Action.BUY, {"USDC": 5_000 * USDC, "WETH": 0}, now=now,
                     last_trade_at=int(T0.timestamp()))
    assert stopped == Blocked("WETH", "macd", BUY, "trade_interval",
                              f"the user allows one trade per 3600 s; next at {int(T0.timestamp()) + 3_600}")


def test_a_cooldown_runs_on_the_bar_clock_a_day_after_a_trade_decided_on_bar_t_ends_at_bar_t_plus_1():
    state = UserState.fresh(RiskLimits(cooldown=DAY, max_trades=None, max_daily_loss_quote=None, max_losses=None,
                                       max_failures=None))
    buy = TradeIntent("WETH", "macd", BUY, "USDC", "WETH", 1_000 * USDC)
    record_fill(state, buy, 1_000 * USDC, 1 * WETH, 6, T0)  # decided on the bar ending at T0
    sell = record_fill(state, TradeIntent("WETH", "macd", SELL, "WETH", "USDC", WETH), WETH, 990 * USDC, 6, T0)
    assert sell[0] == pytest.approx(-10)
    balances = {"USDC": 5_000 * USDC, "WETH": 0}
    blocked = decide(state, limits(), Action.BUY, balances, now=T0 + DAY - timedelta(seconds=1))
    assert isinstance(blocked, Blocked) and blocked.rule == "cooldown"
    assert isinstance(decide(state, limits(), Action.BUY, balances, now=T0 + DAY), TradeIntent)


def test_the_drawdown_kill_switch_engages_at_its_limit_once_and_stops_sells_too():
    state = UserState.fresh(NO_RULES)
    user = limits(kill_switch_drawdown=0.1)
    record_fill(state, TradeIntent("WETH", "macd", BUY, "USDC", "WETH", 1_000 * USDC), 1_000 * USDC, WETH, 6, T0)
    assert mark(state, user, 10_000.0, T0) is None
    assert mark(state, user, 12_000.0, T0 + DAY) is None and state.peak_quote == 12_000.0
    assert mark(state, user, 10_801.0, T0 + 2 * DAY) is None  # 9.99% below the peak
    lock = mark(state, user, 10_799.0, T0 + 3 * DAY)
    assert lock is not None and lock.rule == KILL_SWITCH and lock.until is None
    assert "10.0% below its peak 12,000.00 (limit 10%)" in lock.reason
    assert mark(state, user, 9_000.0, T0 + 4 * DAY) is None  # engaged once
    stopped = decide(state, user, Action.SELL, {"USDC": 0, "WETH": WETH}, now=T0 + 4 * DAY)
    assert isinstance(stopped, Blocked) and stopped.rule == KILL_SWITCH
    assert mark(state, limits(), 1.0, T0 + 5 * DAY) is None  # no limit set: never


def test_failed_trades_count_for_the_consecutive_failures_kill_switch():
    state = UserState.fresh(RiskLimits(cooldown=None, max_trades=None, max_daily_loss_quote=None, max_losses=None,
                                       max_failures=2))
    assert record_failure(state, "WETH", T0) == []
    assert record_failure(state, "WETH", T0 + DAY)[0].rule == "consecutive_failures"
    assert decide(state, limits(), Action.BUY, {"USDC": 5_000 * USDC, "WETH": 0}, now=T0 + 2 * DAY).rule \
        == "consecutive_failures"


class Alternating(Strategy):
    """BUY on even bars, SELL on odd ones (after a warm-up): a trade every bar."""

    id = 99
    name = "alternating"

    class Params(StrategyParams):
        warm: int = 1

    @property
    def warmup(self) -> int:
        return self.params.warm

    def signals(self, close: np.ndarray) -> SignalFrame:
        bars = np.arange(len(close))
        action = np.where(bars % 2 == 0, Action.BUY, Action.SELL).astype(np.int8)
        action[: self.params.warm] = Action.HOLD
        return SignalFrame(action=action, confidence=(action != 0).astype(float))

    def explain(self, action: Action, indicators: dict[str, float]) -> str:
        return action.name


def falling_market(bars: int) -> pd.DataFrame:
    index = pd.date_range("2022-01-01", periods=bars, freq="1D", tz="UTC")
    return pd.DataFrame({"ETH": np.linspace(3_000.0, 1_500.0, bars)}, index=index)


def setup(kill_switch: float | None, loss_budget_usd: float = 1_000) -> UserBacktestSetup:
    return UserBacktestSetup(
        tokens=["WETH"], strategies={"WETH": [Alternating()]},
        limits=limits(kill_switch_drawdown=kill_switch), risk=NO_RULES,
        balances={"USDC": 10_000 * USDC, "WETH": 2 * WETH}, decimals={"USDC": 6, "WETH": 18}, max_slippage_bps=100,
        daily_loss_budget_usd=loss_budget_usd)


def run(kill_switch: float | None, bars: int = 40, loss_budget_usd: float = 1_000):
    pools = constant_product_pools(2_000_000, {"WETH": 3_000.0}, "USDC", {"USDC": 6, "WETH": 18})
    return run_user_backtest(setup(kill_switch, loss_budget_usd), falling_market(bars), {"WETH": "ETH"}, pools)


def test_the_user_backtest_fills_each_decision_at_the_next_bar_through_the_pool_and_is_reproducible():
    first, second = run(None), run(None)
    pd.testing.assert_frame_equal(first.fills, second.fills)
    fills = first.fills
    assert list(fills["side"][:4]) == [BUY, SELL, BUY, SELL]
    # The first BUY is decided on bar 2 (bar 1's SELL finds nothing held) and fills at
    # bar 3's time, through bar 3's pool.
    assert fills["time"].iloc[0] == falling_market(40).index[3]
    quote_reserve, token_reserve = constant_product_pools(
        2_000_000, {"WETH": 3_000.0}, "USDC", {"USDC": 6, "WETH": 18})("WETH", round(falling_market(40)["ETH"].iloc[3], 8))
    assert fills["amount_out"].iloc[0] == amount_out(1_000 * USDC, quote_reserve, token_reserve)
    assert first.value_quote.iloc[0] == pytest.approx(10_000 + 2 * 3_000)


def test_the_user_backtest_stops_every_trade_once_the_drawdown_kill_switch_engages():
    free, stopped = run(None), run(0.1)
    # The user's own 2 WETH lose value as the market falls: 10% below the 16,000 peak.
    engaged_at = stopped.value_quote.index[np.argmax(stopped.value_quote.to_numpy() <= 0.9 * 16_000)]
    assert len(stopped.fills) < len(free.fills)
    assert (stopped.fills["time"] < engaged_at).all()
    assert len(stopped.blocks) > 0 and (stopped.blocks["rule"] == KILL_SWITCH).all()
    assert (stopped.blocks["time"] >= engaged_at).all()


def test_the_loss_budget_counts_as_the_executor_half_at_once_draining_half_a_day():
    budget = LossBudget(daily_usd=10.0)
    assert budget.refusal(5.0, 0) is None and budget.refusal(5.01, 0) is not None
    budget.count(4.0, 0)
    assert "ExecutorLossBudgetExceeded" in budget.refusal(1.01, 0) and budget.refusal(1.0, 0) is None
    assert budget.spent_at(43_200) == pytest.approx(1.5)  # 5 USD a day drained for half a day
    assert budget.spent_at(86_400) == 0.0 and budget.refusal(5.0, 86_400) is None
    budget.count(-3.0, 86_400)  # a fill above the oracle counts nothing
    assert budget.spent_usd == 4.0 and budget.updated_at == 0
    assert loss_against_oracle(1_000.0, 100.0, 97) == pytest.approx(30.0)
    assert loss_against_oracle(1_000.0, 100.0, 101) == 0.0


def test_the_user_backtest_refuses_fills_past_the_loss_budget_as_failures():
    # A BUY of 1,000 USDC loses about 4.1 USD against the oracle (the pool's fee, its impact):
    # a budget of 8.5 counts 4.25 at once and drains 4.25 a day, so a BUY is refused whenever
    # the day's drain has not made room for it yet; with a budget of 0 no BUY executes.
    roomy, tight, none = run(None), run(None, loss_budget_usd=8.5), run(None, loss_budget_usd=0)
    assert len(roomy.failures) == 0 and len(none.fills) == 0 and len(none.failures) > 0
    assert 0 < len(tight.fills) < len(roomy.fills)
    assert tight.failures["reason"].str.contains("ExecutorLossBudgetExceeded").all()
    assert (tight.failures["side"] == BUY).all() and (none.failures["side"] == BUY).all()
