"""MockMarketDriver and keepers/replay/driver.py: one transaction pushes every feed and
trades every real Uniswap V2 pool to the new oracle price, for tokens of 6, 8 and 18
decimals; the Executor then accepts a trade at that price."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from helpers_contracts import FEED_DECIMALS, PRICES_USD, reverts_with, units

import keepers.chain.onchain as onchain_module
from keepers.base.errors import SentinelError
from keepers.chain.deployment import DeployedContract, DeploymentRecord, load_record
from keepers.chain.uniswap import uniswap_v2_container
from keepers.replay.driver import MarketDriver, advance_time, deploy_market_driver

PAIR = uniswap_v2_container("UniswapV2Pair")

# A third market: a 6-decimal token whose feed has 18 decimals (the others have 8).
SIX_DECIMALS_PRICE_USD = 15
SIX_DECIMALS_FEED_DECIMALS = 18
START_PRICES_USD = {**PRICES_USD, "TKN6": SIX_DECIMALS_PRICE_USD}
PRICE_TOLERANCE = Fraction(5, 10_000)  # 5 bps
DAY = 86_400


@pytest.fixture(scope="session")
def market(tokens, feeds, pools, uniswap, make_token, make_feed, add_pool):
    """USDC (quote, 6 decimals), WETH (18), WBTC (8) and TKN6 (6): tokens, feeds, pools."""
    six = make_token("TKN6", 6)
    add_pool(six, SIX_DECIMALS_PRICE_USD, tokens["USDC"], PRICES_USD["USDC"])
    return {
        "tokens": {**tokens, "TKN6": six},
        "feeds": {**feeds, "TKN6": make_feed(SIX_DECIMALS_PRICE_USD, SIX_DECIMALS_FEED_DECIMALS)},
        "factory": uniswap["factory"],
    }


@pytest.fixture(scope="session")
def record_file(tmp_path_factory):
    return tmp_path_factory.mktemp("deployments") / "ethereum-local.json"


@pytest.fixture(scope="session")
def driver(market, owner, chain, record_file):
    record = DeploymentRecord(
        ecosystem="ethereum",
        network="local",
        chain_id=chain.chain_id,
        contracts={"UniswapV2Factory": DeployedContract(address=market["factory"].address)},
        tokens={symbol: token.address for symbol, token in market["tokens"].items()},
        feeds={symbol: feed.address for symbol, feed in market["feeds"].items()},
    )
    return deploy_market_driver(record, "USDC", owner, record_file)


def _pool_price(factory, token, quote) -> Fraction:
    """Quote base units per token base unit, from the pair's reserves."""
    pair = PAIR.at(factory.getPair(token, quote))
    reserve0, reserve1, _ = pair.getReserves()
    token_reserve, quote_reserve = (reserve0, reserve1) if pair.token0() == token.address else (reserve1, reserve0)
    return Fraction(quote_reserve, token_reserve)


def _oracle_price(token, feed, quote, quote_feed) -> Fraction:
    """The same unit from the feeds: token USD / quote USD, adjusted for all decimals."""
    token_usd = Fraction(feed.latestRoundData().answer, 10 ** feed.decimals())
    quote_usd = Fraction(quote_feed.latestRoundData().answer, 10 ** quote_feed.decimals())
    return token_usd / quote_usd * 10 ** quote.decimals() / 10 ** token.decimals()


def _assert_moved(driver, market, prices_usd, receipt, chain):
    tokens, feeds = market["tokens"], market["feeds"]
    block_time = chain.provider.get_block(receipt.block_number).timestamp
    for symbol, answer in zip(driver.feed_decimals, driver.answers(prices_usd), strict=True):
        round_data = feeds[symbol].latestRoundData()
        assert round_data.answer == answer, symbol
        assert round_data.updatedAt == block_time, symbol
    for symbol in ("WETH", "WBTC", "TKN6"):
        pool = _pool_price(market["factory"], tokens[symbol], tokens["USDC"])
        oracle = _oracle_price(tokens[symbol], feeds[symbol], tokens["USDC"], feeds["USDC"])
        assert abs(pool / oracle - 1) <= PRICE_TOLERANCE, f"{symbol}: pool off by {float(pool / oracle - 1):.2e}"


@pytest.mark.parametrize("factor", [1.01, 1.10, 1.50, 0.99, 0.90, 0.50])
def test_move__every_feed_and_pool_at_the_new_price(driver, market, owner, chain, factor):
    prices = {symbol: START_PRICES_USD[symbol] * factor for symbol in driver.feed_decimals}
    prices["USDC"] = 1
    nonce = owner.nonce
    receipt = driver.move(prices)
    _assert_moved(driver, market, prices, receipt, chain)
    # One move is one transaction, alone in its block.
    assert owner.nonce == nonce + 1
    assert len(chain.provider.get_block(receipt.block_number).transactions) == 1


def test_move__mixed_directions_and_a_moving_quote(driver, market, chain):
    prices = {"USDC": 0.98, "WETH": 3_000.5, "WBTC": 30_000.25, "TKN6": 15.15}
    _assert_moved(driver, market, prices, driver.move(prices), chain)
    back = {"USDC": 1.0001, "WETH": 1_999.99, "WBTC": 61_000, "TKN6": 7.5}
    _assert_moved(driver, market, back, driver.move(back), chain)


def test_move__at_the_bar_time(driver, market, chain):
    next_time = advance_time(DAY)
    receipt = driver.move(START_PRICES_USD)
    assert chain.provider.get_block(receipt.block_number).timestamp == next_time
    bar_time = next_time + DAY
    receipt = driver.move(START_PRICES_USD, at_time=bar_time)
    assert market["feeds"]["WETH"].latestRoundData().updatedAt == bar_time
    _assert_moved(driver, market, START_PRICES_USD, receipt, chain)


def test_move__gas_of_a_four_feed_move(driver):
    receipt = driver.move({symbol: price * 1.1 for symbol, price in START_PRICES_USD.items()})
    print(f"\nMockMarketDriver.move, 4 feeds and 3 pools: {receipt.gas_used} gas (limit {driver.gas_limit})")
    assert receipt.gas_used < driver.gas_limit / 2


def test_move__then_the_executor_trades_at_the_new_price(
    driver, executor, router, keeper, trader, usdc, weth, chain, trade_id
):
    """Without the pools following the feeds, a 10% move puts the pool far below the
    oracle floor; after `move` the keeper's trade at the floor passes."""
    prices = {**START_PRICES_USD, "WETH": PRICES_USD["WETH"] * 1.1}
    driver.move(prices, at_time=chain.blocks.head.timestamp + DAY)
    amount_in = units(1_000, 6)
    floor = executor.oracleFloor(trader, usdc, weth, amount_in)
    assert router.getAmountsOut(amount_in, [usdc, weth])[1] >= floor
    tx = executor.executeTrade(
        trader, usdc, weth, amount_in, floor, router, chain.pending_timestamp + 600, trade_id(1), sender=keeper
    )
    (event,) = tx.events.filter(executor.TradeExecuted)
    assert event.priceOut == units(PRICES_USD["WETH"] * 1.1, 18)
    assert event.amountOut >= floor


def test_from_record__another_process_finds_the_driver(driver, record_file, owner):
    found = MarketDriver.from_record(load_record(record_file), owner)
    assert found.contract.address == driver.contract.address
    assert found.feed_decimals == {
        "USDC": FEED_DECIMALS, "WETH": FEED_DECIMALS, "WBTC": FEED_DECIMALS, "TKN6": SIX_DECIMALS_FEED_DECIMALS,
    }  # fmt: skip


def test_move__wrong_answer_count__reverts(driver, owner, project):
    with reverts_with(project.MockMarketDriver.MockMarketDriverAnswerCount, given=2, expected=4):
        driver.contract.move([units(1, 8), units(2_000, 8)], sender=owner)


def test_move__non_positive_answer__reverts(driver, market, owner, project):
    answers = driver.answers(START_PRICES_USD)
    answers[2] = 0
    with reverts_with(
        project.MockMarketDriver.MockMarketDriverNonPositiveAnswer, feed=market["feeds"]["WBTC"], answer=0
    ):
        driver.contract.move(answers, sender=owner)


@pytest.mark.parametrize(
    "prices", [{"USDC": 1, "WETH": 2_000}, {**START_PRICES_USD, "LTC": 50}, {**START_PRICES_USD, "WBTC": -1}]
)
def test_answers__missing_extra_or_negative_price__refused(driver, prices):
    with pytest.raises(SentinelError, match="market move"):
        driver.answers(prices)


def test_move__sender_anvil_cannot_sign_for__refused(driver):
    stranger = replace(driver, sender="0x000000000000000000000000000000000000dEaD")
    with pytest.raises(SentinelError, match="was refused"):
        stranger.move(START_PRICES_USD)


def test_deploy__public_network__refused(driver, owner, record_file, monkeypatch):
    monkeypatch.setattr(onchain_module, "is_local_chain", lambda network: False)  # where the check reads it
    with pytest.raises(SentinelError, match="only on local chains and forks"):
        deploy_market_driver(load_record(record_file), "USDC", owner, record_file)
