"""INTERIM, until the lead's strategies/bars.py and keepers/chain/rounds.py land: a feed's
rounds read through Multicall3 in batches, and bars built from them by the project's
definition (a bar [s, s+T)'s close is the answer of the last round with updatedAt < s+T,
the answer in force at the bar's end; carried forward when no round falls in the bar).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector

from keepers.referee.chain_log import MULTICALL_BATCH, multicall

PHASE_SHIFT = 64
_LATEST = function_signature_to_4byte_selector("latestRoundData()")
_GET_ROUND = function_signature_to_4byte_selector("getRoundData(uint80)")
_ROUND_TYPES = ["uint80", "int256", "uint256", "uint256", "uint80"]


@dataclass(frozen=True)
class Round:
    """One answer of a feed: when it was updated and what it said (raw, feed decimals)."""

    round_id: int
    answer: int
    updated_at: int


@dataclass(frozen=True)
class Bar:
    """One bar of a series from the rounds: start, and open/high/low/close (raw answers)."""

    start: int
    open: int
    high: int
    low: int
    close: int


def read_rounds(feed: str, since: int = 0) -> list[Round]:
    """The feed's rounds of its current phase, oldest first, back to the last one updated
    before ``since`` (every round with ``since`` 0): newest first in Multicall3 batches."""
    (latest,) = multicall([(feed, _LATEST)])
    round_id = decode(_ROUND_TYPES, latest)[0]
    phase, number = round_id >> PHASE_SHIFT, round_id & ((1 << PHASE_SHIFT) - 1)
    rounds: list[Round] = []
    while number > 0:
        ids = [(phase << PHASE_SHIFT) | n for n in range(number, max(number - MULTICALL_BATCH, 0), -1)]
        answers = multicall([(feed, _GET_ROUND + i.to_bytes(32, "big")) for i in ids])
        done = False
        for data in answers:
            if data is None:
                continue
            rid, answer, _, updated_at, _ = decode(_ROUND_TYPES, data)
            if updated_at == 0:
                continue
            rounds.append(Round(rid, answer, updated_at))
            done = done or updated_at < since
        number = (ids[-1] & ((1 << PHASE_SHIFT) - 1)) - 1
        if done:
            break
    return sorted(rounds, key=lambda r: (r.updated_at, r.round_id))


def bars_from_rounds(rounds: Sequence[Round], first: int, last: int, timeframe: int) -> list[Bar]:
    """The bars starting at ``first`` to ``last`` (inclusive, bar starts): each closes at
    the answer in force at its end; bars before the feed's first round are left out."""
    times = [r.updated_at for r in rounds]
    bars = []
    for start in range(first, last + 1, timeframe):
        end = bisect_left(times, start + timeframe)  # rounds with updatedAt < the bar's end
        if end == 0:
            continue
        inside = [r.answer for r in rounds[bisect_left(times, start):end]]
        close = rounds[end - 1].answer
        bars.append(Bar(start, inside[0] if inside else close, max(inside, default=close),
                        min(inside, default=close), close))
    return bars
