"""The Executor's oracle rules, in Python: one table the keeper checks every reading
against, so it never records or acts on a price the contract would refuse.

Each rule is the Executor's own check (contracts/ExecutorOracle.sol, ``_readPrice`` and
``_checkSequencer``), in the contract's order, with the custom error it reverts with;
``tests/contracts/test_oracle_parity.py`` feeds every case of the contract suite's
oracle matrix to both and asserts the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

UINT80_MAX = 2**80 - 1


@dataclass(frozen=True)
class FeedAnswer:
    """One feed's latest round as read on-chain, with the decimals it reports now."""

    round_id: int
    answer: int
    updated_at: int
    decimals: int

    @property
    def price(self) -> float:
        """The answer in USD."""
        return self.answer / 10**self.decimals


@dataclass(frozen=True)
class FeedRules:
    """What the Executor counts as a valid answer of one feed (its ``feedConfig``)."""

    max_age_seconds: int
    decimals: int  # as registered
    min_answer: int = 0
    max_answer: int = 0  # 0: no upper bound


@dataclass(frozen=True)
class SequencerAnswer:
    """An L2 sequencer uptime feed's latest round: 0 up, 1 down, since ``started_at``."""

    answer: int
    started_at: int


@dataclass(frozen=True)
class OracleProblem:
    """Why an answer cannot be used: the Executor's error and the keeper's rule name."""

    error: str  # the Executor's custom error, e.g. ExecutorStalePrice
    rule: str  # recorded with the risk event: oracle_invalid, oracle_stale, oracle_bounds, sequencer
    reason: str


FEED_REVERTED = OracleProblem("ExecutorFeedReverted", "oracle_invalid", "the feed's call reverted")
FEED_MALFORMED = OracleProblem("ExecutorFeedMalformed", "oracle_invalid",
                               "the feed's answer does not decode as its ABI says (short, long or out of range)")


@dataclass(frozen=True)
class _Rule:
    error: str
    rule: str
    broken: Callable[[FeedAnswer, FeedRules, int, int], bool]
    reason: Callable[[FeedAnswer, FeedRules, int, int], str]


# The contract's checks, in its order (the first one broken is the one it reverts with).
# Arguments: the answer, the feed's rules, the block time, the maximum age in force.
FEED_RULES: tuple[_Rule, ...] = (
    _Rule("ExecutorFeedMalformed", "oracle_invalid", lambda a, r, now, age: a.round_id > UINT80_MAX,
          lambda a, r, now, age: f"round id {a.round_id} does not fit uint80"),
    _Rule("ExecutorFeedDecimalsChanged", "oracle_invalid", lambda a, r, now, age: a.decimals != r.decimals,
          lambda a, r, now, age: f"the feed reports {a.decimals} decimals, registered with {r.decimals}"),
    _Rule("ExecutorIncompleteRound", "oracle_invalid", lambda a, r, now, age: a.round_id == 0 or a.updated_at == 0,
          lambda a, r, now, age: f"round {a.round_id} updated at {a.updated_at} is incomplete"),
    _Rule("ExecutorInvalidPrice", "oracle_invalid", lambda a, r, now, age: a.answer <= 0,
          lambda a, r, now, age: f"answer {a.answer} is not a positive price"),
    _Rule("ExecutorFuturePrice", "oracle_invalid", lambda a, r, now, age: a.updated_at > now,
          lambda a, r, now, age: f"updated at {a.updated_at}, after the block time {now}"),
    _Rule("ExecutorStalePrice", "oracle_stale", lambda a, r, now, age: now - a.updated_at > age,
          lambda a, r, now, age: f"answer is {now - a.updated_at} s old (limit {age} s)"),
    _Rule("ExecutorPriceOutOfBounds", "oracle_bounds",
          lambda a, r, now, age: a.answer <= r.min_answer or (r.max_answer != 0 and a.answer >= r.max_answer),
          lambda a, r, now, age: f"answer {a.answer} is at or outside the feed's bounds "
                                 f"({r.min_answer}, {r.max_answer or 'none'}): a pinned feed"),
)


def feed_problem(answer: FeedAnswer | OracleProblem, rules: FeedRules, block_time: int,
                 user_max_age: int = 0) -> OracleProblem | None:
    """The Executor's verdict on one feed's answer at ``block_time`` (None: valid).
    ``answer`` is already a problem when the feed's call reverted or answered malformed
    data; ``user_max_age`` is a user's tighter staleness limit (0: the feed's own)."""
    if isinstance(answer, OracleProblem):
        return answer
    max_age = user_max_age if 0 < user_max_age < rules.max_age_seconds else rules.max_age_seconds
    for rule in FEED_RULES:
        if rule.broken(answer, rules, block_time, max_age):
            return OracleProblem(rule.error, rule.rule, rule.reason(answer, rules, block_time, max_age))
    return None


def sequencer_problem(answer: SequencerAnswer | OracleProblem, grace_seconds: int,
                      block_time: int) -> OracleProblem | None:
    """The Executor's verdict on the L2 sequencer feed (None: up for longer than the grace
    period); a problem already when its call reverted or answered malformed data."""
    if isinstance(answer, OracleProblem):
        return answer
    if answer.answer != 0 or answer.started_at == 0:
        return OracleProblem("ExecutorSequencerDown", "sequencer", "the L2 sequencer is down")
    if answer.started_at > block_time or block_time - answer.started_at <= grace_seconds:
        return OracleProblem("ExecutorSequencerGracePeriod", "sequencer",
                             f"the L2 sequencer restarted at {answer.started_at}, within its {grace_seconds} s grace")
    return None
