"""The protective exits' rules in Python (strategies/exits.py) and how the user engine
books and refuses around them: the contract's triggers on exact integers, the trailing
stop's high-water mark from rounds after the start, an exit spent until the next start,
the whole balance sold across every sleeve, and the BUY the Executor refuses."""

from __future__ import annotations

from datetime import UTC, datetime

from strategies.base import Action
from strategies.engine import (
    BUY,
    EXIT_PROTECTION,
    Blocked,
    Sleeve,
    TradeIntent,
    UserLimits,
    UserState,
    choose,
    record_exit,
    sell_sleeves,
)
from strategies.exits import ExitTrigger, ExitWatch, Protection, price_e18
from strategies.risk import RiskLimits

USD = 10**18
T0 = datetime(2024, 3, 1, tzinfo=UTC)
USDC, WETH = 10**6, 10**18


def test_the_triggers_follow_the_contract_order_on_exact_integers():
    both = Protection(stop_loss_e18=1_500 * USD, take_profit_e18=3_000 * USD, trailing_bps=1_500)
    assert both.trigger(1_500 * USD, None) == ExitTrigger.STOP_LOSS  # at the price, not only below
    assert both.trigger(1_500 * USD + 1, None) == ExitTrigger.NONE
    assert both.trigger(3_000 * USD, None) == ExitTrigger.TAKE_PROFIT
    # 15% below a high of 2,000 is 1,700 exactly: the trailing stop holds there, one wei above it does not.
    assert both.trigger(1_700 * USD, 2_000 * USD) == ExitTrigger.TRAILING_STOP
    assert both.trigger(1_700 * USD + 1, 2_000 * USD) == ExitTrigger.NONE
    assert both.trigger(1_600 * USD, None) == ExitTrigger.NONE  # no round since the start: not evaluated
    assert Protection().active is False and Protection().trigger(1, 10**30) == ExitTrigger.NONE
    assert price_e18(2_000_12345678, 8) == 2_000_12345678 * 10**10


def test_the_high_water_mark_takes_only_higher_rounds_after_the_start_and_a_restart_clears_it():
    watch = ExitWatch(started_at=1_000)
    assert not watch.observe(7, 2_500 * USD, updated_at=999)  # before the start: the contract refuses it
    assert watch.observe(8, 2_000 * USD, updated_at=1_000)
    assert not watch.observe(9, 1_900 * USD, updated_at=1_100)
    assert watch.observe(10, 2_100 * USD, updated_at=1_200)
    assert (watch.high_round_id, watch.high_price) == (10, 2_100 * USD)
    trailing = Protection(trailing_bps=1_000)
    assert watch.due(trailing, 1_890 * USD) == ExitTrigger.TRAILING_STOP
    watch.started_at = None  # spent by the exit
    assert watch.due(trailing, 1 * USD) == ExitTrigger.NONE
    assert not watch.observe(11, 3_000 * USD, updated_at=1_300)
    watch.restart(2_000)
    assert (watch.started_at, watch.high_round_id, watch.high_price) == (2_000, None, None)


def test_an_exit_sells_every_sleeve_of_the_token_each_for_its_share_and_counts_as_a_trade():
    state = UserState.fresh(RiskLimits(cooldown=None, max_trades=None, max_daily_loss_quote=None, max_losses=None,
                                       max_failures=None))
    state.sleeves[("WETH", "macd")] = Sleeve(tokens=1 * WETH, cost_quote=2_000.0)
    state.sleeves[("WETH", "rsi")] = Sleeve(tokens=3 * WETH, cost_quote=6_600.0)
    state.sleeves[("WBTC", "macd")] = Sleeve(tokens=10**8, cost_quote=60_000.0)
    # The whole balance is 5 WETH (1 of it the user's own deposit), sold for 9,000 USDC: 1,800 each.
    pnl, _ = record_exit(state, "WETH", 5 * WETH, 9_000 * USDC, 6, T0)
    assert pnl == (1_800 - 2_000) + (5_400 - 6_600)
    assert state.holding("WETH", "macd") == state.holding("WETH", "rsi") == 0
    assert state.holding("WBTC", "macd") == 10**8  # another token's sleeve is not touched
    assert len(state.evaluator.trades) == 1 and state.evaluator.trades[0].pnl_quote == pnl
    # The sleeves hold more than the vault sold (the user withdrew some): they share the proceeds.
    sleeves = {("WETH", "a"): Sleeve(tokens=2 * WETH, cost_quote=1.0), ("WETH", "b"): Sleeve(tokens=2 * WETH)}
    profit, booked = sell_sleeves(sleeves, "WETH", 2 * WETH, 100.0)
    assert booked == [("WETH", "a"), ("WETH", "b")] and profit == 100.0 - 1.0
    assert sell_sleeves({}, "WETH", 2 * WETH, 100.0) == (None, [])


def test_a_buy_is_stopped_where_the_users_stop_loss_or_take_profit_holds_as_the_executor_refuses_it():
    limits = UserLimits(quote="USDC", quote_amount=1_000 * USDC, vault_share=None,
                        max_per_trade={"USDC": 10**12, "WETH": 10**24},
                        protections={"WETH": Protection(stop_loss_e18=1_500 * USD, trailing_bps=1_000)})
    state = UserState.fresh(RiskLimits(cooldown=None))
    balances = {"USDC": 5_000 * USDC, "WETH": 0}

    def buy(price):
        return choose(state, limits, "WETH", "macd", Action.BUY, balances, T0, chain_time=0, last_trade_at=0,
                      asset_price=price)

    stopped = buy(1_400 * USD)
    assert isinstance(stopped, Blocked) and stopped.rule == EXIT_PROTECTION and "ExecutorBuyTriggersExit" in stopped.reason
    assert buy(1_600 * USD) == TradeIntent("WETH", "macd", BUY, "USDC", "WETH", 1_000 * USDC)
    assert isinstance(buy(None), TradeIntent)  # no price given: the caller checks no protection
