"""Issue 26, points 4, 7 and 8: the user's own trade settings beside their limits.

- Dust: the oracle's expected output is rounded up (and so the floor and the counted
  loss), so a trade cannot lose a rounded-away unit uncounted; and a user may refuse
  trades below a minimum value.
- Buy allow-list: keepers buy for a user only the quote token (USDC) or a token the user
  allowed (`setBuyAllowed`).
- Oracle age: a user may tighten the feeds' maximum age for their own trades.

Each attack: refused with its named error (inputs matched), every balance unchanged;
beside it the legitimate path.
"""

from __future__ import annotations

import pytest
from helpers_contracts import MAX_AGE, changes, custody_state, reverts_with, units

MAX_FEED_AGE = 7 * 24 * 3600


@pytest.fixture
def holders(trader, keeper, router):
    return {"trader": trader, "keeper": keeper, "router": router}


@pytest.fixture
def trade(executor, router, keeper, trader, chain):
    """The keeper trades `amount_in` of trader's `token_in` for `token_out` (at the oracle
    floor unless `min_out` is given)."""
    count = []

    def execute(token_in, token_out, amount_in, min_out=None, user=None):
        user = user or trader
        if min_out is None:
            min_out = executor.oracleFloor(user, token_in, token_out, amount_in)
        count.append(1)
        return executor.executeTrade(
            user, token_in, token_out, amount_in, min_out, router, chain.pending_timestamp + 600,
            len(count).to_bytes(32, "big"), sender=keeper,
        )  # fmt: skip

    return execute


# ------------------------------------------------------------------ 4. dust
# 1,199 base units of USDC (0.001199 USDC) are worth 1.998 base units of WBTC ($60,000).
DUST_USDC = 1_199


def test_dust_trade__expected_output_rounded_up__floor_refuses_the_lost_unit(
    executor, vault, trader, holders, usdc, wbtc, trade
):
    """Rounded down, the oracle said 1 unit, the floor was 1 and the pool's 1 unit lost
    0.998 units (half the value) uncounted; rounded up the oracle says 2 and the floor too."""
    assert executor.quote(usdc, wbtc, DUST_USDC).oracleAmountOut == 2  # 1.998, rounded up
    assert executor.oracleFloor(trader, usdc, wbtc, DUST_USDC) == 2  # 2 less 1%, rounded up
    before = custody_state(vault, [usdc, wbtc], holders)

    with reverts_with(executor.ExecutorMinOutBelowOracleFloor, minAmountOut=1, oracleFloor=2):
        trade(usdc, wbtc, DUST_USDC, min_out=1)

    assert custody_state(vault, [usdc, wbtc], holders) == before


def test_dust_trade__counted_loss_rounded_up__zero_budget_refuses_it(
    executor, vault, trader, holders, usdc, wbtc, trade
):
    """6,120 base units of USDC are worth 10.2 units of WBTC; the pool pays 10. Rounded
    down the oracle said 10 and nothing was counted; rounded up it says 11, one unit short."""
    executor.setUserLimits(True, 1_000, sender=trader)  # a 10% floor: 10 units pass it
    executor.setDailyLossBudget(0, sender=trader)
    amount_in = 6_120
    quote = executor.quote(usdc, wbtc, amount_in)
    assert (quote.valueUsd, quote.oracleAmountOut) == (amount_in * 10**12, 11)
    assert executor.oracleFloor(trader, usdc, wbtc, amount_in) == 10
    before = custody_state(vault, [usdc, wbtc], holders)

    loss = -(-quote.valueUsd * (11 - 10) // 11)  # the value of the missing unit, rounded up
    with reverts_with(executor.ExecutorLossBudgetExceeded, user=trader, lossUsd=loss, spentUsd=0, budgetUsd=0):
        trade(usdc, wbtc, amount_in)

    assert custody_state(vault, [usdc, wbtc], holders) == before
    executor.setDailyLossBudget(units(1, 18), sender=trader)  # a budget that covers it: the trade goes through
    tx = trade(usdc, wbtc, amount_in)
    assert tx.events.filter(executor.TradeExecuted)[0].amountOut == 10
    assert executor.lossBudget(trader).spentUsd == loss


def test_min_trade_value__below__refused_and_at_it__trades(executor, vault, trader, holders, usdc, weth, trade):
    minimum = units(100, 18)  # $100
    tx = executor.setMinTradeValue(minimum, sender=trader)
    assert tx.events == [executor.MinTradeValueUpdated(user=trader, minTradeValueUsd=minimum)]
    assert executor.userLimits(trader).minTradeValueUsd == minimum
    before = custody_state(vault, [usdc, weth], holders)

    below = units(100, 6) - 1
    with reverts_with(executor.ExecutorTradeValueBelowMinimum, user=trader, valueUsd=below * 10**12,
                      minValueUsd=minimum):  # fmt: skip
        trade(usdc, weth, below)
    assert custody_state(vault, [usdc, weth], holders) == before

    tx = trade(usdc, weth, units(100, 6))
    assert tx.events.filter(executor.TradeExecuted)[0].amountIn == units(100, 6)
    assert vault.balanceOf(trader, usdc) == before["vault", "trader", "USDC"] - units(100, 6)


# --------------------------------------------------------- 7. buy allow-list
def test_buy__token_the_user_never_allowed__refused_and_nothing_moves(
    executor, vault, fund, opt_in, bob, keeper, router, usdc, weth, trade
):
    """Bob sets a per-trade maximum for USDC (what he sells) but allows no token to buy."""
    fund(bob, usdc, units(1_000, 6))
    fund(bob, weth, units(1, 18))
    opt_in(bob, {usdc: units(1_000, 6), weth: units(1, 18)}, buy=())
    assert not executor.isBuyAllowed(bob, weth)
    holders = {"bob": bob, "keeper": keeper, "router": router}
    before = custody_state(vault, [usdc, weth], holders)

    with reverts_with(executor.ExecutorBuyNotAllowed, user=bob, token=weth):
        trade(usdc, weth, units(500, 6), user=bob)
    assert custody_state(vault, [usdc, weth], holders) == before

    # The quote token needs no allowance: selling WETH for USDC goes through.
    assert executor.isBuyAllowed(bob, usdc)
    trade(weth, usdc, units(0.1, 18), user=bob)
    assert changes(before, custody_state(vault, [usdc, weth], holders))[("vault", "bob", "WETH")] == -units(0.1, 18)


def test_buy__allowed_then_forbidden_again(executor, vault, fund, opt_in, bob, usdc, weth, trade):
    fund(bob, usdc, units(1_000, 6))
    opt_in(bob, {usdc: units(1_000, 6)}, buy=())

    tx = executor.setBuyAllowed(weth, True, sender=bob)
    assert tx.events == [executor.BuyAllowedUpdated(user=bob, token=weth, allowed=True)]
    assert executor.isBuyAllowed(bob, weth)
    trade(usdc, weth, units(500, 6), user=bob)
    assert vault.balanceOf(bob, weth) > 0

    executor.setBuyAllowed(weth, False, sender=bob)
    with reverts_with(executor.ExecutorBuyNotAllowed, user=bob, token=weth):
        trade(usdc, weth, units(500, 6), user=bob)


def test_quote_token__is_the_constructor_argument(executor, usdc):
    assert executor.QUOTE_TOKEN() == usdc.address


# -------------------------------------------------------------- 8. oracle age
def test_max_oracle_age__user_tightens__stale_for_them_only(
    chain, executor, vault, trader, holders, fund, opt_in, bob, usdc, weth, feeds, trade
):
    fund(bob, usdc, units(1_000, 6))
    opt_in(bob, {usdc: units(1_000, 6)}, buy=(weth,))
    tx = executor.setMaxOracleAge(600, sender=trader)
    assert tx.events == [executor.MaxOracleAgeUpdated(user=trader, maxOracleAge=600)]
    assert executor.userLimits(trader).maxOracleAge == 600
    chain.mine(deltatime=601)
    updated_at = feeds["USDC"].latestTimestamp()
    before = custody_state(vault, [usdc, weth], holders)

    with reverts_with(executor.ExecutorStalePrice, feed=feeds["USDC"], updatedAt=updated_at, maxAge=600):
        trade(usdc, weth, units(100, 6), min_out=1)
    assert custody_state(vault, [usdc, weth], holders) == before

    trade(usdc, weth, units(100, 6), user=bob)  # bob keeps the feeds' own age (3,600 s)
    assert vault.balanceOf(bob, weth) > 0


def test_max_oracle_age__looser_than_the_feed__never_loosens(chain, executor, trader, feeds, usdc, weth, trade):
    executor.setMaxOracleAge(MAX_FEED_AGE, sender=trader)
    chain.mine(deltatime=MAX_AGE + 1)
    with reverts_with(executor.ExecutorStalePrice, feed=feeds["USDC"], maxAge=MAX_AGE):
        trade(usdc, weth, units(100, 6), min_out=1)


def test_max_oracle_age__above_the_bound__refused(executor, trader):
    with reverts_with(executor.ExecutorOracleAgeAboveMax, maxOracleAge=MAX_FEED_AGE + 1, maxAge=MAX_FEED_AGE):
        executor.setMaxOracleAge(MAX_FEED_AGE + 1, sender=trader)
    assert executor.userLimits(trader).maxOracleAge == 0
