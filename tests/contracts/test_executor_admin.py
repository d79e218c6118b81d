"""Executor administration: governor settings, guardian stops, users' own limits, pause
and the views (the owner acts without delay here; tests/contracts/test_access.py gives
the roles their delays). Every write checks its event; every revert its named error."""

from __future__ import annotations

import pytest
from ape.utils import ZERO_ADDRESS
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector
from helpers_contracts import (
    DEFAULT_SLIPPAGE_BPS,
    FAULT_REVERTS,
    FEED_DECIMALS,
    MAX_AGE,
    PRICES_USD,
    reverts_with,
    units,
)  # fmt: skip
from web3.exceptions import ContractCustomError as Web3ContractCustomError

MAX_FEED_AGE = 7 * 24 * 3600
MAX_USER_SLIPPAGE_BPS = 1_000
@pytest.fixture
def new_feed(make_feed):
    """A fresh 8-decimal WETH-priced feed, not yet registered."""
    return make_feed(PRICES_USD["WETH"])


# ------------------------------------------------------------------ deployment
@pytest.mark.parametrize("zero", ["vault", "quote token"])  # the quote token: issue 26
def test_deploy__zero_vault__reverts(project, owner, chain, usdc, zero):
    # Checked at the raw revert data: Ape's decoding of constructor reverts depends on
    # which contracts it has seen before (eth_abi InvalidPointer after the oracle tests).
    bytecode = project.Executor.contract_type.deployment_bytecode.bytecode
    vault, quote = (ZERO_ADDRESS, usdc.address) if zero == "vault" else (owner.address, ZERO_ADDRESS)
    arguments = abi_encode(["address", "address", "address"], [owner.address, vault, quote]).hex()
    with pytest.raises(Web3ContractCustomError) as raised:
        chain.provider.web3.eth.call({"from": owner.address, "data": bytecode + arguments})
    assert raised.value.data == "0x" + function_signature_to_4byte_selector("ExecutorZeroAddress()").hex()


def test_deploy__initial_state(executor, vault, manager):
    assert executor.authority() == manager
    assert executor.VAULT() == vault
    assert executor.MAX_BPS() == 10_000
    assert executor.MAX_USER_SLIPPAGE_BPS() == MAX_USER_SLIPPAGE_BPS
    assert executor.MAX_FEED_AGE() == MAX_FEED_AGE
    assert executor.paused() is False


# ------------------------------------------------------------------ keepers and routers
@pytest.mark.parametrize("kind", ["Keeper", "Router"])
def test_add_and_remove__keeper_or_router(executor, owner, guardian, alice, kind):
    added = getattr(executor, f"add{kind}")(alice, sender=owner)
    assert added.events == [getattr(executor, f"{kind}Updated")(alice, True)]
    assert getattr(executor, f"is{kind}")(alice) is True
    removed = getattr(executor, f"remove{kind}")(alice, sender=guardian)  # a stop: the guardian's
    assert removed.events == [getattr(executor, f"{kind}Updated")(alice, False)]
    assert getattr(executor, f"is{kind}")(alice) is False


@pytest.mark.parametrize("kind", ["Keeper", "Router"])
def test_add__zero_address__reverts(executor, owner, kind):
    with reverts_with(executor.ExecutorZeroAddress):
        getattr(executor, f"add{kind}")(ZERO_ADDRESS, sender=owner)


@pytest.mark.parametrize("kind", ["Keeper", "Router"])
@pytest.mark.parametrize("caller_name", ["keeper", "guardian", "outsider"])
def test_add__not_governor__reverts(request, executor, kind, caller_name):
    caller = request.getfixturevalue(caller_name)
    with reverts_with(executor.AccessManagedUnauthorized, caller=caller):
        getattr(executor, f"add{kind}")(caller, sender=caller)
    assert getattr(executor, f"is{kind}")(caller) is (kind == "Keeper" and caller_name == "keeper")


@pytest.mark.parametrize("kind", ["Keeper", "Router"])
def test_remove__outsider__reverts(request, executor, keeper, router, outsider, kind):
    member = keeper if kind == "Keeper" else router
    with reverts_with(executor.AccessManagedUnauthorized, caller=outsider):
        getattr(executor, f"remove{kind}")(member, sender=outsider)
    assert getattr(executor, f"is{kind}")(member) is True


# ------------------------------------------------------------------ feeds
@pytest.mark.parametrize("token_decimals", [6, 8, 18])
@pytest.mark.parametrize("feed_decimals", [6, 8, 18])
def test_set_feed__caches_decimals(executor, owner, make_token, make_feed, token_decimals, feed_decimals):
    token = make_token("TKN", token_decimals)
    feed = make_feed(42, feed_decimals)
    tx = executor.setFeed(token, feed, MAX_AGE, 1, 10**30, sender=owner)
    assert tx.events == [executor.FeedUpdated(token=token, feed=feed, maxAge=MAX_AGE, minAnswer=1, maxAnswer=10**30)]
    config = executor.feedConfig(token)
    assert (config.feed, config.maxAge, config.minAnswer, config.maxAnswer) == (feed.address, MAX_AGE, 1, 10**30)
    assert (config.feedDecimals, config.tokenDecimals) == (feed_decimals, token_decimals)


def test_set_feed__replaces_existing(executor, owner, weth, new_feed):
    tx = executor.setFeed(weth, new_feed, MAX_FEED_AGE, 0, 0, sender=owner)
    assert tx.events == [executor.FeedUpdated(token=weth, feed=new_feed, maxAge=MAX_FEED_AGE, minAnswer=0, maxAnswer=0)]
    assert executor.feedConfig(weth).feed == new_feed.address
    assert executor.quote(weth, weth, units(1, 18)).roundIn == new_feed.latestRound()


@pytest.mark.parametrize("max_age", [0, MAX_FEED_AGE + 1])
def test_set_feed__max_age_out_of_range__reverts(executor, owner, weth, new_feed, max_age):
    with reverts_with(executor.ExecutorInvalidFeedConfig, token=weth, reason="maxAge"):
        executor.setFeed(weth, new_feed, max_age, 0, 0, sender=owner)


@pytest.mark.parametrize(
    "min_answer, max_answer",
    [(-1, 0), (-1, 10**12), (10**10, 10**10), (10**10, 10**10 - 1)],
    ids=["negative-min", "negative-min-with-max", "max-equals-min", "max-below-min"],
)
def test_set_feed__bad_bounds__reverts(executor, owner, weth, new_feed, min_answer, max_answer):
    with reverts_with(executor.ExecutorInvalidFeedConfig, token=weth, reason="bounds"):
        executor.setFeed(weth, new_feed, MAX_AGE, min_answer, max_answer, sender=owner)


def test_set_feed__feed_decimals_above_18__reverts(executor, owner, weth, make_feed):
    feed = make_feed(PRICES_USD["WETH"], 19)
    with reverts_with(executor.ExecutorInvalidFeedConfig, token=weth, reason="feed decimals"):
        executor.setFeed(weth, feed, MAX_AGE, 0, 0, sender=owner)


def test_set_feed__token_decimals_above_36__reverts(executor, owner, make_token, make_feed):
    token = make_token("HUGE", 37)
    with reverts_with(executor.ExecutorInvalidFeedConfig, token=token, reason="token decimals"):
        executor.setFeed(token, make_feed(1), MAX_AGE, 0, 0, sender=owner)


def test_set_feed__token_decimals_36(executor, owner, make_token, make_feed, usdc):
    token = make_token("BIG", 36)
    tx = executor.setFeed(token, feed := make_feed(1), MAX_AGE, 0, 0, sender=owner)
    assert tx.events == [executor.FeedUpdated(token=token, feed=feed, maxAge=MAX_AGE, minAnswer=0, maxAnswer=0)]
    assert executor.quote(token, usdc, 10**36).oracleAmountOut == units(1, 6)


@pytest.mark.parametrize("which", ["token", "feed"])
def test_set_feed__zero_address__reverts(executor, owner, weth, new_feed, which):
    token, feed = (ZERO_ADDRESS, new_feed) if which == "token" else (weth, ZERO_ADDRESS)
    with reverts_with(executor.ExecutorZeroAddress):
        executor.setFeed(token, feed, MAX_AGE, 0, 0, sender=owner)


@pytest.mark.parametrize("caller_name", ["guardian", "outsider"])
def test_set_feed__not_governor__reverts(request, executor, weth, new_feed, caller_name):
    caller = request.getfixturevalue(caller_name)
    with reverts_with(executor.AccessManagedUnauthorized, caller=caller):
        executor.setFeed(weth, new_feed, MAX_AGE, 0, 0, sender=caller)


@pytest.mark.parametrize("state", ["stale", "zero", "negative", "round-0", "future", "at-min-bound", "at-max-bound"])
def test_set_feed__feed_already_invalid__reverts(executor, owner, weth, new_feed, chain, state):
    now = chain.blocks.head.timestamp + 100
    answer = new_feed.latestAnswer()
    min_answer, max_answer = (answer, 0) if state == "at-min-bound" else (0, answer if state == "at-max-bound" else 0)
    rounds = {
        "stale": (2, answer, now - MAX_AGE - 1),
        "zero": (2, 0, now),
        "negative": (2, -1, now),
        "round-0": (0, answer, now),
        "future": (2, answer, now + 1),
    }
    expected = {
        "stale": (executor.ExecutorStalePrice, dict(feed=new_feed, updatedAt=now - MAX_AGE - 1, maxAge=MAX_AGE)),
        "zero": (executor.ExecutorInvalidPrice, dict(feed=new_feed, answer=0)),
        "negative": (executor.ExecutorInvalidPrice, dict(feed=new_feed, answer=-1)),
        "round-0": (executor.ExecutorIncompleteRound, dict(feed=new_feed, roundId=0)),
        "future": (executor.ExecutorFuturePrice, dict(feed=new_feed, updatedAt=now + 1, timestamp=now)),
        "at-min-bound": (executor.ExecutorPriceOutOfBounds, dict(answer=answer, minAnswer=answer, maxAnswer=0)),
        "at-max-bound": (executor.ExecutorPriceOutOfBounds, dict(answer=answer, minAnswer=0, maxAnswer=answer)),
    }
    if state in rounds:
        round_id, value, updated_at = rounds[state]
        new_feed.updateRoundData(round_id, value, updated_at, updated_at, sender=owner)
    else:
        new_feed.updateRoundData(2, answer, now, now, sender=owner)
    error, inputs = expected[state]
    chain.pending_timestamp = now
    with reverts_with(error, **inputs):
        executor.setFeed(weth, new_feed, MAX_AGE, min_answer, max_answer, sender=owner)
    assert executor.feedConfig(weth).feed != new_feed.address


def test_set_feed__reverting_feed__reverts(executor, owner, weth, project):
    feed = owner.deploy(project.MockFaultyFeed)
    feed.setFault(FAULT_REVERTS, sender=owner)
    with reverts_with(executor.ExecutorFeedReverted, feed=feed):
        executor.setFeed(weth, feed, MAX_AGE, 0, 0, sender=owner)


def test_remove_feed__by_guardian(executor, guardian, weth, usdc):
    tx = executor.removeFeed(weth, sender=guardian)
    assert tx.events == [executor.FeedRemoved(token=weth)]
    assert executor.feedConfig(weth).feed == ZERO_ADDRESS
    with reverts_with(executor.ExecutorFeedNotSet, token=weth):
        executor.quote(usdc, weth, units(1, 6))


def test_remove_feed__not_set__reverts(executor, owner, guardian, make_token):
    token = make_token("NEW", 18)
    with reverts_with(executor.ExecutorFeedNotSet, token=token):
        executor.removeFeed(token, sender=guardian)


def test_remove_feed__outsider__reverts(executor, outsider, weth):
    with reverts_with(executor.AccessManagedUnauthorized, caller=outsider):
        executor.removeFeed(weth, sender=outsider)


# ------------------------------------------------------------------ sequencer
def test_set_sequencer_feed(executor, owner, make_feed):
    sequencer_feed = make_feed(0, 0)
    tx = executor.setSequencerFeed(sequencer_feed, 3_600, sender=owner)
    assert tx.events == [executor.SequencerFeedUpdated(sequencerFeed=sequencer_feed, gracePeriod=3_600)]
    assert executor.sequencer() == (sequencer_feed.address, 3_600)
    tx = executor.setSequencerFeed(ZERO_ADDRESS, 0, sender=owner)
    assert tx.events == [executor.SequencerFeedUpdated(sequencerFeed=ZERO_ADDRESS, gracePeriod=0)]
    assert executor.sequencer() == (ZERO_ADDRESS, 0)


def test_set_sequencer_feed__grace_period_above_max__reverts(executor, owner, make_feed):
    feed = make_feed(0, 0)
    too_long = executor.MAX_SEQUENCER_GRACE_PERIOD() + 1
    with reverts_with(executor.ExecutorInvalidFeedConfig, token=feed, reason="gracePeriod"):
        executor.setSequencerFeed(feed, too_long, sender=owner)
    executor.setSequencerFeed(feed, too_long - 1, sender=owner)
    assert executor.sequencer() == (feed, too_long - 1)


@pytest.mark.parametrize("caller_name", ["guardian", "outsider"])
def test_set_sequencer_feed__not_governor__reverts(request, executor, make_feed, caller_name):
    outsider = request.getfixturevalue(caller_name)
    with reverts_with(executor.AccessManagedUnauthorized, caller=outsider):
        executor.setSequencerFeed(make_feed(0, 0), 3_600, sender=outsider)


# ------------------------------------------------------------------ users' own limits
@pytest.mark.parametrize("enabled, slippage_bps", [(True, 0), (True, MAX_USER_SLIPPAGE_BPS), (False, 50)])
def test_set_user_limits(executor, bob, enabled, slippage_bps):
    tx = executor.setUserLimits(enabled, slippage_bps, sender=bob)
    assert tx.events == [executor.UserLimitsUpdated(user=bob, enabled=enabled, maxSlippageBps=slippage_bps)]
    assert executor.userLimits(bob) == (enabled, slippage_bps, 0, 0, 0, 0)  # + maxOracleAge, minTradeValueUsd (issue 26)


def test_set_min_trade_interval__keeps_other_limits(executor, bob):
    executor.setUserLimits(True, 75, sender=bob)
    tx = executor.setMinTradeInterval(3_600, sender=bob)
    assert tx.events == [executor.MinTradeIntervalUpdated(user=bob, minTradeInterval=3_600)]
    executor.setUserLimits(True, 50, sender=bob)
    assert executor.userLimits(bob) == (True, 50, 3_600, 0, 0, 0)  # + maxOracleAge, minTradeValueUsd (issue 26)


def test_set_user_limits__slippage_above_max__reverts(executor, bob):
    too_much = MAX_USER_SLIPPAGE_BPS + 1
    with reverts_with(executor.ExecutorSlippageAboveMax, slippageBps=too_much, maxBps=MAX_USER_SLIPPAGE_BPS):
        executor.setUserLimits(True, too_much, sender=bob)
    assert executor.userLimits(bob) == (False, 0, 0, 0, 0, 0)  # + maxOracleAge, minTradeValueUsd (issue 26)


@pytest.mark.parametrize("symbol", ["USDC", "WBTC", "WETH"])
def test_set_max_amount_per_trade(executor, tokens, bob, alice, symbol):
    token = tokens[symbol]
    amount = units(3, token.decimals())
    tx = executor.setMaxAmountPerTrade(token, amount, sender=bob)
    assert tx.events == [executor.MaxAmountPerTradeUpdated(user=bob, token=token, maxAmount=amount)]
    assert executor.maxAmountPerTrade(bob, token) == amount
    assert executor.maxAmountPerTrade(alice, token) == 0  # per user
    tx = executor.setMaxAmountPerTrade(token, 0, sender=bob)
    assert tx.events == [executor.MaxAmountPerTradeUpdated(user=bob, token=token, maxAmount=0)]
    assert executor.maxAmountPerTrade(bob, token) == 0


# ------------------------------------------------------------------ pause
@pytest.mark.parametrize("role", ["guardian"])  # issue 26: the owner is no guardian
def test_pause(executor, owner, guardian, role):
    pauser = {"owner": owner, "guardian": guardian}[role]
    tx = executor.pause(sender=pauser)
    assert tx.events == [executor.Paused(account=pauser)]
    assert executor.paused() is True


@pytest.mark.parametrize("role", ["owner", "keeper", "outsider"])
def test_pause__not_guardian__reverts(executor, owner, keeper, outsider, role):
    caller = {"owner": owner, "keeper": keeper, "outsider": outsider}[role]
    with reverts_with(executor.AccessManagedUnauthorized, caller=caller):
        executor.pause(sender=caller)


def test_pause__already_paused__reverts(executor, guardian):
    executor.pause(sender=guardian)
    with reverts_with(executor.EnforcedPause):
        executor.pause(sender=guardian)


def test_unpause(executor, owner, guardian):
    executor.pause(sender=guardian)
    tx = executor.unpause(sender=owner)
    assert tx.events == [executor.Unpaused(account=owner)]
    assert executor.paused() is False


def test_unpause__guardian__reverts(executor, guardian):
    executor.pause(sender=guardian)
    with reverts_with(executor.AccessManagedUnauthorized, caller=guardian):
        executor.unpause(sender=guardian)
    assert executor.paused() is True


def test_unpause__not_paused__reverts(executor, owner):
    with reverts_with(executor.ExpectedPause):
        executor.unpause(sender=owner)


def test_admin_while_paused(executor, owner, guardian, alice, weth):
    """Pause stops trades, not configuration: users can still opt out."""
    executor.pause(sender=guardian)
    tx = executor.setUserLimits(False, 0, sender=alice)
    assert tx.events == [executor.UserLimitsUpdated(user=alice, enabled=False, maxSlippageBps=0)]
    tx = executor.removeFeed(weth, sender=guardian)
    assert tx.events == [executor.FeedRemoved(token=weth)]


# ------------------------------------------------------------------ views
def test_quote(executor, weth, usdc, feeds, owner):
    feeds["WETH"].updateAnswer(units(2_500, FEED_DECIMALS), sender=owner)
    quote = executor.quote(weth, usdc, units(2, 18))
    assert quote.priceIn == units(2_500, 18)
    assert quote.priceOut == units(1, 18)
    assert (quote.roundIn, quote.roundOut) == (2, 1)
    assert quote.oracleAmountOut == units(5_000, 6)
    assert quote.valueUsd == units(5_000, 18)


@pytest.mark.parametrize("slippage_bps", [0, DEFAULT_SLIPPAGE_BPS, MAX_USER_SLIPPAGE_BPS])
def test_oracle_floor(executor, weth, usdc, bob, slippage_bps):
    executor.setUserLimits(True, slippage_bps, sender=bob)
    assert executor.oracleFloor(bob, weth, usdc, units(2, 18)) == units(4_000, 6) * (10_000 - slippage_bps) // 10_000


def test_oracle_floor__user_without_limits(executor, weth, usdc, outsider):
    """A user who never set limits has slippage 0: the floor is the whole oracle value."""
    assert executor.oracleFloor(outsider, weth, usdc, units(2, 18)) == units(4_000, 6)


def test_views__defaults(executor, keeper, router, outsider, trade_id, make_token):
    assert executor.isKeeper(keeper) is True
    assert executor.isKeeper(outsider) is False
    assert executor.isRouter(router) is True
    assert executor.isRouter(outsider) is False
    assert executor.isTradeIdUsed(trade_id(1)) is False
    assert executor.sequencer() == (ZERO_ADDRESS, 0)
    assert executor.userLimits(outsider) == (False, 0, 0, 0, 0, 0)  # + maxOracleAge, minTradeValueUsd (issue 26)
    config = executor.feedConfig(make_token("NONE", 18))
    assert config.feed == ZERO_ADDRESS and config.maxAge == 0 and config.tokenDecimals == 0
