"""A user's minimum time between trades: with it, what a compromised keeper can cost
a user is bounded per interval, not only per trade."""

import pytest
from helpers_contracts import reverts_with, units

AMOUNT_IN = units(100, 6)
INTERVAL = 3_600


@pytest.fixture
def trade_at(executor, router, keeper, trader, usdc, weth, chain, trade_id, feeds, owner):
    """Sends a 100 USDC -> WETH trade in a block stamped `timestamp`, feeds refreshed in the
    two blocks before it. Block times are pinned (one second a block) from two seconds
    before: the trade's block has its stamp whatever the node's clock did since."""

    def execute(timestamp, n):
        if timestamp - 2 > chain.blocks.head.timestamp:  # else the feeds were refreshed a moment ago
            chain.provider.make_request("anvil_setBlockTimestampInterval", [1])
            try:
                chain.pending_timestamp = timestamp - 2
                for symbol in ("USDC", "WETH"):
                    feeds[symbol].updateAnswer(feeds[symbol].latestAnswer(), sender=owner)
            finally:
                chain.provider.make_request("anvil_removeBlockTimestampInterval", [])
        chain.pending_timestamp = timestamp
        floor = executor.oracleFloor(trader, usdc, weth, AMOUNT_IN)
        return executor.executeTrade(
            trader, usdc, weth, AMOUNT_IN, floor, router, timestamp + 600, trade_id(n), sender=keeper
        )

    return execute


def test_execute_trade__within_interval__reverts(executor, trader, trade_at, chain, ledger):
    executor.setMinTradeInterval(INTERVAL, sender=trader)
    first = trade_at(chain.pending_timestamp + 10, 1)
    first_at = chain.provider.get_block(first.block_number).timestamp
    assert executor.userLimits(trader).lastTradeAt == first_at

    before = ledger()
    with reverts_with(executor.ExecutorTradeTooSoon, user=trader, nextTradeAt=first_at + INTERVAL):
        trade_at(first_at + INTERVAL - 1, 2)
    assert ledger() == before
    assert executor.isTradeIdUsed((2).to_bytes(32, "big")) is False


def test_execute_trade__after_interval__succeeds(executor, trader, trade_at, chain):
    executor.setMinTradeInterval(INTERVAL, sender=trader)
    first = trade_at(chain.pending_timestamp + 10, 1)
    first_at = chain.provider.get_block(first.block_number).timestamp
    second = trade_at(first_at + INTERVAL, 2)
    assert len(second.events.filter(executor.TradeExecuted)) == 1


def test_execute_trade__no_interval__back_to_back_trades_allowed(executor, trader, trade_at, chain):
    first = trade_at(chain.pending_timestamp + 10, 1)
    first_at = chain.provider.get_block(first.block_number).timestamp
    assert len(trade_at(first_at + 1, 2).events.filter(executor.TradeExecuted)) == 1
    assert executor.userLimits(trader).lastTradeAt == 0
