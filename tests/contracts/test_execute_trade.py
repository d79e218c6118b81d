"""Executor.executeTrade: trades in both directions through the real Uniswap V2 pools,
the TradeExecuted event and balances after, and every revert path with its named error."""

from __future__ import annotations

import pytest
from helpers_contracts import (
    FEED_DECIMALS,
    MAX_BPS,
    PRICES_USD,
    oracle_amount_out,
    oracle_floor,
    reverts_with,
    units,
)
from web3.exceptions import ContractLogicError as Web3ContractLogicError

AMOUNT_IN = units(1_000, 6)  # USDC sold in the default trade


@pytest.fixture
def trade(executor, router, keeper, trader, usdc, weth, chain, trade_id):
    """Executes a trade: by default the keeper sells 1,000 of trader's USDC for WETH at
    the oracle floor; any argument can be overridden."""

    def execute(sender=keeper, **overrides):
        args = dict(
            user=trader, tokenIn=usdc, tokenOut=weth, amountIn=AMOUNT_IN, minAmountOut=None,
            router=router, deadline=chain.pending_timestamp + 600, tradeId=trade_id(1),
        )  # fmt: skip
        args.update(overrides)
        if args["minAmountOut"] is None:
            pair = (args["tokenIn"], args["tokenOut"])
            args["minAmountOut"] = executor.oracleFloor(args["user"], *pair, args["amountIn"])
        return executor.executeTrade(*args.values(), sender=sender)

    return execute


# ------------------------------------------------------------------ happy paths
@pytest.mark.parametrize(
    "symbol_in, symbol_out, amount",
    [("USDC", "WETH", 1_000), ("WETH", "USDC", 1), ("WBTC", "USDC", 0.05), ("USDC", "WBTC", 3_000)],
)
def test_execute_trade(
    executor, vault, router, keeper, trader, tokens, feeds, owner, trade, trade_id, ledger,
    symbol_in, symbol_out, amount,
):  # fmt: skip
    token_in, token_out = tokens[symbol_in], tokens[symbol_out]
    amount_in = units(amount, token_in.decimals())
    for _ in range(2):  # distinct round ids for the two sides
        feeds[symbol_out].updateAnswer(units(PRICES_USD[symbol_out], FEED_DECIMALS), sender=owner)
    expected_out = router.getAmountsOut(amount_in, [token_in, token_out])[1]
    floor = executor.oracleFloor(trader, token_in, token_out, amount_in)
    assert expected_out >= floor
    before = ledger()

    tx = trade(tokenIn=token_in, tokenOut=token_out, amountIn=amount_in, minAmountOut=floor, tradeId=trade_id(7))

    assert tx.events.filter(executor.TradeExecuted) == [
        executor.TradeExecuted(
            tradeId=trade_id(7), user=trader, keeper=keeper, tokenIn=token_in, tokenOut=token_out,
            amountIn=amount_in, amountOut=expected_out,
            priceIn=units(PRICES_USD[symbol_in], 18), priceOut=units(PRICES_USD[symbol_out], 18),
            roundIn=1, roundOut=3,
        )
    ]  # fmt: skip
    assert tx.events.filter(vault.Swapped) == [
        vault.Swapped(
            user=trader, tokenIn=token_in, tokenOut=token_out, router=router, amountIn=amount_in, amountOut=expected_out
        )
    ]
    after = ledger()
    delta = {symbol_in: -amount_in, symbol_out: expected_out}
    for symbol, readings in before.items():
        assert after[symbol] == tuple(reading + delta.get(symbol, 0) for reading in readings)
    assert executor.isTradeIdUsed(trade_id(7)) is True
    assert executor.isTradeIdUsed(trade_id(1)) is False
    assert token_in.allowance(vault, router) == 0


def test_execute_trade__oracle_floor_by_hand(executor, trader, usdc, weth, feeds, owner, trade):
    """Off-round prices, amount and slippage: the floor matches the hand computation,
    including the rounding up, and a trade at exactly that floor passes."""
    slippage_bps = 73
    executor.setUserLimits(True, slippage_bps, sender=trader)
    answer_in, answer_out = units(0.99987654, 8), units(2_000.12345678, 8)
    feeds["USDC"].updateAnswer(answer_in, sender=owner)
    feeds["WETH"].updateAnswer(answer_out, sender=owner)
    amount_in = 1_000_123_457  # 1,000.123457 USDC

    oracle_out = oracle_amount_out(amount_in, answer_in, answer_out, 6, 18)
    floor = oracle_floor(oracle_out, slippage_bps)
    assert oracle_out * (MAX_BPS - slippage_bps) % MAX_BPS != 0  # the rounding up matters here
    assert executor.quote(usdc, weth, amount_in).oracleAmountOut == oracle_out
    assert executor.oracleFloor(trader, usdc, weth, amount_in) == floor

    tx = trade(amountIn=amount_in, minAmountOut=floor)
    [event] = tx.events.filter(executor.TradeExecuted)
    assert (event.amountIn, event.priceIn, event.priceOut) == (amount_in, answer_in * 10**10, answer_out * 10**10)
    assert event.amountOut >= floor


def test_execute_trade__min_out_at_floor(executor, trade, trader, usdc, weth):
    floor = executor.oracleFloor(trader, usdc, weth, AMOUNT_IN)
    tx = trade(minAmountOut=floor)
    assert tx.events.filter(executor.TradeExecuted)[0].amountOut >= floor


def test_execute_trade__min_out_below_floor__reverts(executor, trade, trader, usdc, weth, trade_id):
    floor = executor.oracleFloor(trader, usdc, weth, AMOUNT_IN)
    with reverts_with(executor.ExecutorMinOutBelowOracleFloor, minAmountOut=floor - 1, oracleFloor=floor):
        trade(minAmountOut=floor - 1)
    assert executor.isTradeIdUsed(trade_id(1)) is False


def test_execute_trade__amount_at_user_limit(executor, trade, trader, weth, usdc):
    tx = trade(tokenIn=weth, tokenOut=usdc, amountIn=units(2, 18))
    assert tx.events.filter(executor.TradeExecuted)[0].amountIn == units(2, 18)


def test_execute_trade__deadline_is_now(executor, trade, chain):
    now = chain.blocks.head.timestamp + 60
    chain.pending_timestamp = now
    tx = trade(deadline=now)
    assert tx.timestamp == now
    assert len(tx.events.filter(executor.TradeExecuted)) == 1


# ------------------------------------------------------------------ reverts: who and when
def test_execute_trade__non_keeper__reverts(executor, trade, outsider):
    with reverts_with(executor.ExecutorUnauthorizedKeeper, caller=outsider):
        trade(sender=outsider)


def test_execute_trade__removed_keeper__reverts(executor, trade, owner, guardian, keeper):
    tx = executor.removeKeeper(keeper, sender=guardian)
    assert tx.events == [executor.KeeperUpdated(keeper=keeper, allowed=False)]
    with reverts_with(executor.ExecutorUnauthorizedKeeper, caller=keeper):
        trade()


def test_execute_trade__executor_paused__reverts(executor, trade, guardian, trader, usdc, weth):
    floor = executor.oracleFloor(trader, usdc, weth, AMOUNT_IN)
    tx = executor.pause(sender=guardian)
    assert tx.events == [executor.Paused(account=guardian)]
    with reverts_with(executor.EnforcedPause):
        trade(minAmountOut=floor)


def test_execute_trade__vault_paused__reverts(executor, vault, trade, guardian, trade_id):
    """The executor's checks all pass; the vault's own kill switch stops the swap."""
    tx = vault.pause(sender=guardian)
    assert tx.events == [vault.Paused(account=guardian)]
    assert executor.paused() is False
    with reverts_with(vault.EnforcedPause):
        trade()
    assert executor.isTradeIdUsed(trade_id(1)) is False


def test_execute_trade__expired__reverts(executor, trade, chain):
    now = chain.blocks.head.timestamp + 60
    chain.pending_timestamp = now
    with reverts_with(executor.ExecutorExpired, deadline=now - 1, timestamp=now):
        trade(deadline=now - 1)


def test_execute_trade__router_not_allowed__reverts(executor, trade, outsider):
    with reverts_with(executor.ExecutorRouterNotAllowed, router=outsider):
        trade(router=outsider)


def test_execute_trade__router_removed__reverts(executor, trade, router, owner, guardian):
    tx = executor.removeRouter(router, sender=guardian)
    assert tx.events == [executor.RouterUpdated(router=router, allowed=False)]
    with reverts_with(executor.ExecutorRouterNotAllowed, router=router):
        trade()


@pytest.mark.parametrize("second_user", ["same", "other"])
def test_execute_trade__trade_id_reused__reverts(
    executor, trade, trade_id, fund, opt_in, bob, usdc, ledger, second_user
):
    trade(tradeId=trade_id(5))
    if second_user == "other":
        fund(bob, usdc, AMOUNT_IN)
        opt_in(bob, {usdc: AMOUNT_IN})
    before = ledger()
    with reverts_with(executor.ExecutorTradeIdUsed, tradeId=trade_id(5)):
        trade(tradeId=trade_id(5), **({"user": bob} if second_user == "other" else {}))
    assert ledger() == before


# ------------------------------------------------------------------ reverts: the user's limits
def test_execute_trade__zero_amount__reverts(executor, trade):
    with reverts_with(executor.ExecutorZeroAmount):
        trade(amountIn=0, minAmountOut=0)


def test_execute_trade__user_never_opted_in__reverts(executor, trade, bob, fund, usdc):
    fund(bob, usdc, AMOUNT_IN)
    with reverts_with(executor.ExecutorUserNotEnabled, user=bob):
        trade(user=bob, minAmountOut=units(1, 18))


def test_execute_trade__user_opted_out__reverts(executor, trade, trader):
    tx = executor.setUserLimits(False, 100, sender=trader)
    assert tx.events == [executor.UserLimitsUpdated(user=trader, enabled=False, maxSlippageBps=100)]
    with reverts_with(executor.ExecutorUserNotEnabled, user=trader):
        trade()


@pytest.mark.parametrize("symbol, limit", [("USDC", 5_000), ("WETH", 2)])
def test_execute_trade__amount_above_user_limit__reverts(executor, trade, trader, tokens, symbol, limit):
    token = tokens[symbol]
    decimals = token.decimals()
    amount_in = units(limit, decimals) + 1
    other = tokens["WETH" if symbol == "USDC" else "USDC"]
    with reverts_with(
        executor.ExecutorAmountAboveUserLimit, user=trader, token=token, amount=amount_in, limit=units(limit, decimals)
    ):
        trade(tokenIn=token, tokenOut=other, amountIn=amount_in, minAmountOut=1)


def test_execute_trade__zero_limit_for_token__reverts(executor, trade, trader, wbtc, usdc):
    tx = executor.setMaxAmountPerTrade(wbtc, 0, sender=trader)
    assert tx.events == [executor.MaxAmountPerTradeUpdated(user=trader, token=wbtc, maxAmount=0)]
    with reverts_with(executor.ExecutorAmountAboveUserLimit, user=trader, token=wbtc, amount=1, limit=0):
        trade(tokenIn=wbtc, tokenOut=usdc, amountIn=1, minAmountOut=1)


# ------------------------------------------------------------------ reverts: feeds and the pool
@pytest.mark.parametrize("side", ["tokenIn", "tokenOut"])
def test_execute_trade__feed_not_set__reverts(executor, trade, owner, guardian, usdc, weth, side):
    token = usdc if side == "tokenIn" else weth
    tx = executor.removeFeed(token, sender=guardian)
    assert tx.events == [executor.FeedRemoved(token=token)]
    with reverts_with(executor.ExecutorFeedNotSet, token=token):
        trade(minAmountOut=units(1, 18))


def test_execute_trade__pool_below_min_out__router_reverts(
    executor, router, keeper, trader, usdc, weth, feeds, owner, chain, trade_id, ledger
):
    """The feed says WETH is worth 1,900 USD, the pool sells it at about 2,000: the floor
    is above what the pool gives. The router's own check (it measures the vault's balance
    increase, like the vault does) reverts first, so VaultInsufficientOutput is never
    reached through Uniswap V2. Sent through web3: the router's revert data (solc 0.6)
    has non-zero padding that eth_abi refuses to decode, so Ape raises
    NonEmptyPaddingBytes instead of a ContractLogicError."""
    feeds["WETH"].updateAnswer(units(1_900, FEED_DECIMALS), sender=owner)
    floor = executor.oracleFloor(trader, usdc, weth, AMOUNT_IN)
    assert router.getAmountsOut(AMOUNT_IN, [usdc, weth])[1] < floor
    data = executor.executeTrade.encode_input(
        trader, usdc, weth, AMOUNT_IN, floor, router, chain.pending_timestamp + 600, trade_id(1)
    )
    call = {"from": keeper.address, "to": executor.address, "data": data}
    web3 = chain.provider.web3
    before = ledger()

    with pytest.raises(Web3ContractLogicError) as revert:
        web3.eth.call(call)
    assert revert.value.message == "execution reverted: UniswapV2Router: INSUFFICIENT_OUTPUT_AMOUNT"
    receipt = web3.eth.wait_for_transaction_receipt(web3.eth.send_transaction({**call, "gas": 1_000_000}))
    assert receipt.status == 0
    assert ledger() == before
    assert executor.isTradeIdUsed(trade_id(1)) is False


# ------------------------------------------------------------------ reverts: the vault's custody checks
def test_execute_trade__above_vault_balance__reverts(executor, vault, trade, trader, weth, usdc):
    """The per-trade limit is not a balance: the vault refuses to sell what the user lacks."""
    tx = executor.setMaxAmountPerTrade(weth, units(100, 18), sender=trader)
    assert tx.events == [executor.MaxAmountPerTradeUpdated(user=trader, token=weth, maxAmount=units(100, 18))]
    with reverts_with(vault.VaultInsufficientBalance, user=trader, token=weth, have=units(5, 18), need=units(6, 18)):
        trade(tokenIn=weth, tokenOut=usdc, amountIn=units(6, 18))


def test_execute_trade__same_token__reverts(executor, vault, trade, usdc):
    with reverts_with(vault.VaultSameToken, token=usdc):
        trade(tokenOut=usdc)


def test_execute_trade__token_not_allowed_in_vault__reverts(executor, vault, trade, owner, guardian, weth):
    tx = vault.delistToken(weth, sender=guardian)
    assert tx.events == [vault.TokenAllowed(token=weth, allowed=False)]
    with reverts_with(vault.VaultTokenNotAllowed, token=weth):
        trade()
