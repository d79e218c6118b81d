"""The oracle failure matrix: every way a feed (tokenIn's, tokenOut's or the L2
sequencer's) can be unusable stops executeTrade with its named error and moves nothing;
each limit passes exactly at its boundary. Then feed decimals x token decimals: the
quote equals the hand-computed amount and a trade at the floor goes through."""

from __future__ import annotations

import pytest
from eth_utils import function_signature_to_4byte_selector
from helpers_contracts import (
    DEFAULT_SLIPPAGE_BPS,
    FAULT_HUGE_DATA,
    FAULT_REVERTS,
    FAULT_ROUND_ID_OUT_OF_RANGE,
    FAULT_SHORT_DATA,
    MAX_AGE,
    oracle_amount_out,
    oracle_floor,
    reverts_with,
    units,
)  # fmt: skip
from web3.exceptions import ContractCustomError as Web3ContractCustomError

AMOUNT_IN = units(1_000, 6)  # USDC sold for WETH in every matrix trade
ROUND = 42  # round id of the fresh answers each test starts from
GRACE_PERIOD = 3_600
SIDES = ["tokenIn", "tokenOut"]
MALFORMED = "ExecutorFeedMalformed(address,uint256)"


@pytest.fixture
def clock(chain, feeds, owner, trader):
    """Both feeds answer afresh (round ROUND, updated at `base`); trades run at
    `now` = base + 300 unless a test moves it."""
    base = chain.blocks.head.timestamp
    for feed in (feeds["USDC"], feeds["WETH"]):
        feed.updateRoundData(ROUND, feed.latestAnswer(), base, base, sender=owner)
    return {"base": base, "now": base + 300}


@pytest.fixture
def execute_at(executor, router, keeper, trader, usdc, weth, chain, trade_id, clock):
    """Sends the USDC -> WETH trade in a block stamped `at` (default: clock's now), with
    minAmountOut at the floor of the fresh answers (1 USD and 2,000 USD, 1% slippage)."""
    floor = oracle_floor(oracle_amount_out(AMOUNT_IN, units(1, 8), units(2_000, 8), 6, 18), DEFAULT_SLIPPAGE_BPS)

    def execute(at=None):
        at = clock["now"] if at is None else at
        chain.pending_timestamp = at
        return executor.executeTrade(trader, usdc, weth, AMOUNT_IN, floor, router, at + 600, trade_id(1), sender=keeper)

    return execute


@pytest.fixture
def unchanged(executor, ledger, trade_id):
    """Asserts, after the block, that no balance moved and tradeId 1 is still unused."""
    before = ledger()

    def check():
        assert ledger() == before
        assert executor.isTradeIdUsed(trade_id(1)) is False

    return check


def _target(side, usdc, weth, feeds):
    return (usdc, feeds["USDC"]) if side == "tokenIn" else (weth, feeds["WETH"])


# ------------------------------------------------------------------ price feeds
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("case", ["stale", "zero-answer", "negative-answer", "future", "round-0", "updated-at-0"])
def test_execute_trade__bad_answer__reverts(
    executor, feeds, usdc, weth, owner, clock, execute_at, unchanged, side, case
):
    _, feed = _target(side, usdc, weth, feeds)
    answer, base, now = feed.latestAnswer(), clock["base"], clock["now"]
    stale = now - MAX_AGE - 1
    round_id, value, updated_at, error, inputs = {
        "stale": (ROUND + 1, answer, stale, executor.ExecutorStalePrice, dict(updatedAt=stale, maxAge=MAX_AGE)),
        "zero-answer": (ROUND + 1, 0, base, executor.ExecutorInvalidPrice, dict(answer=0)),
        "negative-answer": (ROUND + 1, -answer, base, executor.ExecutorInvalidPrice, dict(answer=-answer)),
        "future": (ROUND + 1, answer, now + 1, executor.ExecutorFuturePrice, dict(updatedAt=now + 1, timestamp=now)),
        "round-0": (0, answer, base, executor.ExecutorIncompleteRound, dict(roundId=0)),
        "updated-at-0": (ROUND + 1, answer, 0, executor.ExecutorIncompleteRound, dict(roundId=ROUND + 1)),
    }[case]  # fmt: skip
    feed.updateRoundData(round_id, value, updated_at, updated_at, sender=owner)
    with reverts_with(error, feed=feed, **inputs):
        execute_at()
    unchanged()


@pytest.mark.parametrize("side", SIDES)
def test_execute_trade__answer_exactly_max_age(executor, feeds, usdc, weth, owner, clock, execute_at, side):
    _, feed = _target(side, usdc, weth, feeds)
    now = clock["base"] + MAX_AGE
    for other in (feeds["USDC"], feeds["WETH"]):
        other.updateRoundData(ROUND, other.latestAnswer(), now, now, sender=owner)
    feed.updateRoundData(ROUND + 1, feed.latestAnswer(), clock["base"], clock["base"], sender=owner)
    tx = execute_at(now)
    assert tx.timestamp == now
    [event] = tx.events.filter(executor.TradeExecuted)
    assert (event.roundIn, event.roundOut) == ((ROUND + 1, ROUND) if side == "tokenIn" else (ROUND, ROUND + 1))


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("bound", ["min", "max"])
def test_execute_trade__answer_pinned_at_bound__reverts(
    executor, feeds, usdc, weth, owner, clock, execute_at, unchanged, side, bound
):
    """Bounds one unit either side of the answer: the answer itself passes, an answer at
    either bound is a pinned feed."""
    token, feed = _target(side, usdc, weth, feeds)
    answer = feed.latestAnswer()
    bounds = dict(minAnswer=answer - 1, maxAnswer=answer + 1)
    tx = executor.setFeed(token, feed, MAX_AGE, *bounds.values(), sender=owner)
    assert tx.events == [executor.FeedUpdated(token=token, feed=feed, maxAge=MAX_AGE, **bounds)]
    pinned = bounds["minAnswer" if bound == "min" else "maxAnswer"]
    feed.updateRoundData(ROUND + 1, pinned, clock["base"], clock["base"], sender=owner)
    with reverts_with(executor.ExecutorPriceOutOfBounds, feed=feed, answer=pinned, **bounds):
        execute_at()
    unchanged()


@pytest.mark.parametrize("side", SIDES)
def test_execute_trade__answer_inside_bounds(executor, feeds, usdc, weth, owner, execute_at, side):
    token, feed = _target(side, usdc, weth, feeds)
    answer = feed.latestAnswer()
    executor.setFeed(token, feed, MAX_AGE, answer - 1, answer + 1, sender=owner)
    assert len(execute_at().events.filter(executor.TradeExecuted)) == 1


@pytest.mark.parametrize("side", SIDES)
def test_execute_trade__feed_reverts__reverts(executor, project, feeds, usdc, weth, owner, execute_at, unchanged, side):
    token, _ = _target(side, usdc, weth, feeds)
    broken = owner.deploy(project.MockFaultyFeed)
    tx = executor.setFeed(token, broken, MAX_AGE, 0, 0, sender=owner)
    assert tx.events == [executor.FeedUpdated(token=token, feed=broken, maxAge=MAX_AGE, minAnswer=0, maxAnswer=0)]
    broken.setFault(FAULT_REVERTS, sender=owner)
    with reverts_with(executor.ExecutorFeedReverted, feed=broken):
        execute_at()
    unchanged()


@pytest.mark.parametrize("side", SIDES)
def test_execute_trade__feed_decimals_changed_after_registration__reverts(
    executor, feeds, usdc, weth, owner, execute_at, unchanged, side
):
    """A proxy re-pointed to an aggregator with other decimals: before, the floor shrank by
    the difference (a fill 50% below the oracle value at 1% slippage); now the trade stops
    until the feed is registered again (a delayed power)."""
    token, feed = _target(side, usdc, weth, feeds)
    feed.setDecimals(6, sender=owner)
    with reverts_with(executor.ExecutorFeedDecimalsChanged, feed=feed, registered=8, current=6):
        execute_at()
    with reverts_with(executor.ExecutorFeedDecimalsChanged, feed=feed, registered=8, current=6):
        executor.quote(usdc, weth, AMOUNT_IN)
    unchanged()


@pytest.mark.parametrize(
    "fault, size", [(FAULT_SHORT_DATA, 64), (FAULT_HUGE_DATA, 100_000), (FAULT_ROUND_ID_OUT_OF_RANGE, 160)],
    ids=["short", "oversized", "round-id-out-of-range"],
)
@pytest.mark.parametrize("side", SIDES)
def test_execute_trade__malformed_feed_answer__named_error_within_bounded_gas(
    executor, project, feeds, usdc, weth, owner, execute_at, unchanged, chain, side, fault, size
):
    token, _ = _target(side, usdc, weth, feeds)
    faulty = owner.deploy(project.MockFaultyFeed)
    executor.setFeed(token, faulty, MAX_AGE, 0, 0, sender=owner)
    faulty.setFault(fault, sender=owner)
    with reverts_with(executor.ExecutorFeedMalformed, feed=faulty, size=size):
        execute_at()
    unchanged()
    # The executor copies at most 160 bytes: within 200,000 gas the named error still comes back.
    data = executor.quote.encode_input(usdc, weth, AMOUNT_IN).to_0x_hex()
    with pytest.raises(Web3ContractCustomError) as raised:
        chain.provider.web3.eth.call({"to": executor.address, "data": data, "gas": 200_000})
    assert raised.value.data.startswith("0x" + function_signature_to_4byte_selector(MALFORMED).hex())


def test_execute_trade__failed_trade_keeps_trade_id(executor, feeds, owner, clock, execute_at, trade_id, chain):
    """A trade stopped by a stale answer does not burn its id: it executes once the feed recovers."""
    now, weth_feed = clock["now"], feeds["WETH"]
    stale = now - MAX_AGE - 1
    weth_feed.updateRoundData(ROUND + 1, weth_feed.latestAnswer(), stale, stale, sender=owner)
    with reverts_with(executor.ExecutorStalePrice):
        execute_at()
    weth_feed.updateRoundData(ROUND + 2, weth_feed.latestAnswer(), now, now, sender=owner)
    tx = execute_at(chain.blocks.head.timestamp + 1)  # the failed trade was mined at `now`
    assert tx.events.filter(executor.TradeExecuted)[0].tradeId == trade_id(1)
    assert executor.isTradeIdUsed(trade_id(1)) is True


# ------------------------------------------------------------------ L2 sequencer
@pytest.fixture
def sequencer_feed(executor, make_feed, owner, clock):
    """An uptime feed (answer 0: up) whose sequencer came up long ago, with a grace period."""
    feed = make_feed(0, 0)
    feed.updateRoundData(1, 0, clock["base"], clock["base"] - 10 * GRACE_PERIOD, sender=owner)
    tx = executor.setSequencerFeed(feed, GRACE_PERIOD, sender=owner)
    assert tx.events == [executor.SequencerFeedUpdated(sequencerFeed=feed, gracePeriod=GRACE_PERIOD)]
    return feed


def test_execute_trade__sequencer_up(executor, sequencer_feed, execute_at):
    assert len(execute_at().events.filter(executor.TradeExecuted)) == 1


@pytest.mark.parametrize("case", ["down", "started-at-0"])
def test_execute_trade__sequencer_down__reverts(executor, sequencer_feed, owner, clock, execute_at, unchanged, case):
    answer, started_at = (1, clock["base"]) if case == "down" else (0, 0)
    sequencer_feed.updateRoundData(2, answer, clock["base"], started_at, sender=owner)
    with reverts_with(executor.ExecutorSequencerDown, sequencerFeed=sequencer_feed):
        execute_at()
    unchanged()


def test_execute_trade__sequencer_grace_period__reverts(executor, sequencer_feed, owner, clock, execute_at, unchanged):
    restarted_at = clock["now"] - GRACE_PERIOD
    sequencer_feed.updateRoundData(2, 0, restarted_at, restarted_at, sender=owner)
    with reverts_with(executor.ExecutorSequencerGracePeriod, restartedAt=restarted_at, gracePeriod=GRACE_PERIOD):
        execute_at()
    unchanged()


def test_execute_trade__sequencer_grace_period_over(executor, sequencer_feed, owner, clock, execute_at):
    restarted_at = clock["now"] - GRACE_PERIOD - 1
    sequencer_feed.updateRoundData(2, 0, restarted_at, restarted_at, sender=owner)
    assert len(execute_at().events.filter(executor.TradeExecuted)) == 1


def test_execute_trade__sequencer_started_in_future__counts_as_grace_period(
    executor, sequencer_feed, owner, clock, execute_at, unchanged
):
    restarted_at = clock["now"] + 60
    sequencer_feed.updateRoundData(2, 0, clock["base"], restarted_at, sender=owner)
    with reverts_with(executor.ExecutorSequencerGracePeriod, restartedAt=restarted_at, gracePeriod=GRACE_PERIOD):
        execute_at()
    unchanged()


def test_execute_trade__sequencer_feed_reverts__reverts(executor, project, owner, execute_at, unchanged):
    broken = owner.deploy(project.MockFaultyFeed)
    broken.setFault(FAULT_REVERTS, sender=owner)
    executor.setSequencerFeed(broken, GRACE_PERIOD, sender=owner)
    with reverts_with(executor.ExecutorFeedReverted, feed=broken):
        execute_at()
    unchanged()


# ------------------------------------------------------------------ decimals
PRICE_USD = 1_234.5678  # exact in 6, 8 and 18 feed decimals


@pytest.mark.parametrize("direction", ["sell", "buy"])
@pytest.mark.parametrize("token_decimals", [6, 8, 18])
@pytest.mark.parametrize("feed_decimals", [6, 8, 18])
def test_execute_trade__decimals(
    executor, vault, router, keeper, trader, usdc, feeds, owner, make_token, make_feed, add_pool, fund, trade_id,
    feed_decimals, token_decimals, direction,
):  # fmt: skip
    token = make_token("TKN", token_decimals)
    feed = make_feed(PRICE_USD, feed_decimals)
    add_pool(token, PRICE_USD, usdc, 1)
    vault.listToken(token, sender=owner)
    tx = executor.setFeed(token, feed, MAX_AGE, 0, 0, sender=owner)
    assert tx.events == [executor.FeedUpdated(token=token, feed=feed, maxAge=MAX_AGE, minAnswer=0, maxAnswer=0)]
    fund(trader, token, units(10, token_decimals))
    executor.setMaxAmountPerTrade(token, units(10, token_decimals), sender=trader)
    executor.setBuyAllowed(token, True, sender=trader)  # the user trades it both ways

    token_answer, usdc_answer = feed.latestAnswer(), feeds["USDC"].latestAnswer()
    assert token_answer == units(PRICE_USD, feed_decimals)
    if direction == "sell":
        token_in, token_out, amount_in = token, usdc, units(1, token_decimals)
        sides = (token_answer, usdc_answer, token_decimals, 6, feed_decimals, 8)
    else:
        token_in, token_out, amount_in = usdc, token, units(1_000, 6)
        sides = (usdc_answer, token_answer, 6, token_decimals, 8, feed_decimals)
    oracle_out = oracle_amount_out(amount_in, *sides)
    quote = executor.quote(token_in, token_out, amount_in)
    assert quote.oracleAmountOut == oracle_out
    assert (quote.priceIn, quote.priceOut) == (sides[0] * 10 ** (18 - sides[4]), sides[1] * 10 ** (18 - sides[5]))
    floor = oracle_floor(oracle_out, DEFAULT_SLIPPAGE_BPS)
    assert executor.oracleFloor(trader, token_in, token_out, amount_in) == floor

    balance_out = vault.balanceOf(trader, token_out)
    tx = executor.executeTrade(
        trader, token_in, token_out, amount_in, floor, router, 2**63, trade_id(1), sender=keeper
    )
    [event] = tx.events.filter(executor.TradeExecuted)
    assert event.amountOut >= floor
    assert vault.balanceOf(trader, token_out) == balance_out + event.amountOut
