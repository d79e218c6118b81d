from helpers_contracts import units


def test_keeper_buys_weth_for_alice(executor, vault, router, keeper, funded_alice, usdc, weth, trade_id, chain):
    alice = funded_alice
    amount_in = units(1_000, 6)
    floor = executor.oracleFloor(alice, usdc, weth, amount_in)
    tx = executor.executeTrade(
        alice, usdc, weth, amount_in, floor, router, chain.pending_timestamp + 60, trade_id(1), sender=keeper
    )
    event = tx.events.filter(executor.TradeExecuted)[0]
    assert event.amountOut >= floor
    assert vault.balanceOf(alice, weth) == units(5, 18) + event.amountOut
