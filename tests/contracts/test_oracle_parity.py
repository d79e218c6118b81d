"""The keeper's price check is the Executor's (keepers/chain/oracle_rules.py): every case
of the oracle matrix, fed to both, gets the same verdict: the same named error, or valid."""

from __future__ import annotations

import pytest
from eth_utils import function_signature_to_4byte_selector
from helpers_contracts import FAULT_HUGE_DATA, FAULT_REVERTS, FAULT_ROUND_ID_OUT_OF_RANGE, FAULT_SHORT_DATA, MAX_AGE
from web3.exceptions import ContractCustomError

from keepers.chain.client import read_feed, read_sequencer
from keepers.chain.oracle_rules import FeedRules, feed_problem, sequencer_problem

ROUND = 42
GRACE_PERIOD = 3_600
ERRORS = ("ExecutorFeedReverted(address)", "ExecutorFeedMalformed(address,uint256)",
          "ExecutorFeedDecimalsChanged(address,uint8,uint8)", "ExecutorInvalidPrice(address,int256)",
          "ExecutorIncompleteRound(address,uint80)", "ExecutorFuturePrice(address,uint256,uint256)",
          "ExecutorStalePrice(address,uint256,uint256)", "ExecutorPriceOutOfBounds(address,int256,int256,int256)",
          "ExecutorSequencerDown(address)", "ExecutorSequencerGracePeriod(uint256,uint256)")
SELECTORS = {"0x" + function_signature_to_4byte_selector(error).hex(): error.split("(")[0] for error in ERRORS}


def contract_verdict(chain, executor, usdc, weth, now: int) -> str | None:
    """The Executor's own verdict on the USDC -> WETH prices at block time ``now``."""
    chain.mine(timestamp=now)
    data = executor.quote.encode_input(usdc, weth, 10**9).to_0x_hex()
    try:
        chain.provider.web3.eth.call({"to": executor.address, "data": data})
    except ContractCustomError as error:
        return SELECTORS[str(error.data)[:10]]
    return None


def keeper_verdict(chain, executor, usdc, weth) -> str | None:
    """The keeper's verdict at the chain's head, from what it reads and its rules table, in
    the Executor's order: the sequencer, then tokenIn's feed, then tokenOut's."""
    now = chain.blocks.head.timestamp
    sequencer, grace = executor.sequencer()
    if int(sequencer, 16):
        problem = sequencer_problem(read_sequencer(sequencer), grace, now)
        if problem is not None:
            return problem.error
    for token in (usdc, weth):
        config = executor.feedConfig(token)
        rules = FeedRules(config.maxAge, config.feedDecimals, config.minAnswer, config.maxAnswer)
        problem = feed_problem(read_feed(config.feed), rules, now)
        if problem is not None:
            return problem.error
    return None


def feed_case(case: str, feed, executor, token, owner, project, base: int, now: int):
    """Puts one feed into the matrix case ``case``; returns the feed now registered."""
    answer = feed.latestAnswer()
    rounds = {
        "fresh": (ROUND + 1, answer, base), "stale": (ROUND + 1, answer, now - MAX_AGE - 1),
        "exactly-max-age": (ROUND + 1, answer, now - MAX_AGE), "zero-answer": (ROUND + 1, 0, base),
        "negative-answer": (ROUND + 1, -answer, base), "future": (ROUND + 1, answer, now + 1),
        "round-0": (0, answer, base), "updated-at-0": (ROUND + 1, answer, 0),
    }
    if case in rounds:
        round_id, value, updated_at = rounds[case]
        feed.updateRoundData(round_id, value, updated_at, updated_at, sender=owner)
        return feed
    if case in ("pinned-min", "pinned-max", "inside-bounds"):
        executor.setFeed(token, feed, MAX_AGE, answer - 1, answer + 1, sender=owner)
        value = {"pinned-min": answer - 1, "pinned-max": answer + 1, "inside-bounds": answer}[case]
        feed.updateRoundData(ROUND + 1, value, base, base, sender=owner)
        return feed
    if case == "decimals-changed":
        feed.setDecimals(6, sender=owner)
        return feed
    faulty = owner.deploy(project.MockFaultyFeed)
    executor.setFeed(token, faulty, MAX_AGE, 0, 0, sender=owner)
    faulty.setFault({"reverts": FAULT_REVERTS, "short": FAULT_SHORT_DATA, "oversized": FAULT_HUGE_DATA,
                     "round-id-out-of-range": FAULT_ROUND_ID_OUT_OF_RANGE}[case], sender=owner)
    return faulty


@pytest.fixture
def clock(chain, feeds, owner) -> tuple[int, int]:
    """Both feeds answer afresh at ``base``; verdicts are taken at ``now`` = base + 300."""
    base = chain.blocks.head.timestamp
    for feed in (feeds["USDC"], feeds["WETH"]):
        feed.updateRoundData(ROUND, feed.latestAnswer(), base, base, sender=owner)
    return base, base + 300


FEED_CASES = ["fresh", "stale", "exactly-max-age", "zero-answer", "negative-answer", "future", "round-0",
              "updated-at-0", "pinned-min", "pinned-max", "inside-bounds", "decimals-changed", "reverts", "short",
              "oversized", "round-id-out-of-range"]


@pytest.mark.parametrize("side", ["tokenIn", "tokenOut"])
@pytest.mark.parametrize("case", FEED_CASES)
def test_each_feed_case_gets_the_same_verdict_from_the_keeper_and_the_executor(
    chain, executor, feeds, usdc, weth, owner, project, clock, side, case
):
    base, now = clock
    token, feed = (usdc, feeds["USDC"]) if side == "tokenIn" else (weth, feeds["WETH"])
    feed_case(case, feed, executor, token, owner, project, base, now)
    expected = contract_verdict(chain, executor, usdc, weth, now)
    assert keeper_verdict(chain, executor, usdc, weth) == expected, (case, side)
    if case in ("fresh", "exactly-max-age", "inside-bounds"):
        assert expected is None
    else:
        assert expected is not None  # a real refusal, not two silent passes


@pytest.mark.parametrize("case", ["up", "down", "started-at-0", "grace-period", "grace-over", "started-in-future",
                                  "reverts"])
def test_each_sequencer_case_gets_the_same_verdict_from_the_keeper_and_the_executor(
    chain, executor, usdc, weth, owner, project, make_feed, clock, case
):
    base, now = clock
    if case == "reverts":
        sequencer = owner.deploy(project.MockFaultyFeed)
        sequencer.setFault(FAULT_REVERTS, sender=owner)
    else:
        sequencer = make_feed(0, 0)
        answer, started_at = {"up": (0, base - 10 * GRACE_PERIOD), "down": (1, base), "started-at-0": (0, 0),
                              "grace-period": (0, now - GRACE_PERIOD), "grace-over": (0, now - GRACE_PERIOD - 1),
                              "started-in-future": (0, now + 60)}[case]
        sequencer.updateRoundData(1, answer, base, started_at, sender=owner)
    executor.setSequencerFeed(sequencer, GRACE_PERIOD, sender=owner)
    expected = contract_verdict(chain, executor, usdc, weth, now)
    assert keeper_verdict(chain, executor, usdc, weth) == expected, case
    assert (expected is None) == (case in ("up", "grace-over"))
