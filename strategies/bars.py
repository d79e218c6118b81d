"""Bars as public facts: a bar's prices derived from a price feed's rounds alone.

A bar ``[start, start + timeframe)`` closes at the answer *in force at its end*: the
answer of the feed's last round updated before the end. A round stamped exactly at the
end starts the next bar (it was not yet the answer during the bar's last instant), which
is also the bar a keeper's reading of that round is folded into. A bar in which the feed
did not update closes at the answer carried from before it. Every keeper, worker,
backtest of recorded data and outside auditor that reads the same rounds gets the same
bars, whenever and however often it read the feed.

Pure: rounds in, bars out (no chain, no store). The keeper, ``keeper verify`` and
``keeper rebuild`` read the rounds (keepers/chain/rounds.py) and call these.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Round:
    """One round of a feed: its (proxy) round id, its answer in USD and when it was updated."""

    round_id: int
    price: float
    updated_at: int  # unix seconds


@dataclass(frozen=True)
class Bar:
    """One bar of a timeframe, from the rounds in force during it."""

    start: int  # unix seconds
    open: float
    high: float
    low: float
    close: float
    round_id: int  # the round in force at the bar's end (the close's round)


def answer_in_force(rounds: Sequence[Round], at: int) -> Round | None:
    """The round whose answer was in force just before ``at`` (the last updated before it);
    None when the feed had no round yet. ``rounds`` are ordered by ``updated_at``."""
    index = bisect.bisect_left(rounds, at, key=_updated_at)
    return rounds[index - 1] if index else None


def _updated_at(round_: Round) -> int:
    return round_.updated_at


def bars_from_rounds(rounds: Sequence[Round], timeframe_seconds: int, first_start: int, end: int) -> list[Bar]:
    """The bars that start at ``first_start`` (a multiple of the timeframe), then every
    ``timeframe_seconds``, and have closed by ``end``: each bar's close is the answer in
    force at its end, its open the answer in force at its start (its first round when none
    was), its high and low over the open and the bar's own rounds. Bars before the feed's
    first round are left out. ``rounds`` are ordered by ``updated_at``."""
    if first_start % timeframe_seconds:
        raise ValueError(f"first_start {first_start} is not a bar start of timeframe {timeframe_seconds}")
    bars = []
    for start in range(first_start, end - timeframe_seconds + 1, timeframe_seconds):
        first = bisect.bisect_left(rounds, start, key=_updated_at)
        last = bisect.bisect_left(rounds, start + timeframe_seconds, lo=first, key=_updated_at)
        if last == 0:
            continue  # no round yet: the feed did not exist
        inside = [r.price for r in rounds[first:last]]
        opening = rounds[first - 1].price if first else inside[0]
        bars.append(Bar(start=start, open=opening, high=max([opening, *inside]), low=min([opening, *inside]),
                        close=rounds[last - 1].price, round_id=rounds[last - 1].round_id))
    return bars
