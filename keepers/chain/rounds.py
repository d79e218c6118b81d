"""Past rounds of Chainlink feeds, read through Multicall3 in batches.

A bar's close is the answer in force at its end (strategies/bars.py), so whoever
derives bars (the keeper as a bar closes, ``keeper verify``, ``keeper rebuild``) needs
each feed's rounds over a window. They are read newest first, walking back over the
round ids of each feed's current phase (a proxy round id is ``phase << 64 | round``; ids
are consecutive within a phase only), for every feed at once: one ``eth_call`` per
batch, the first asking for a few rounds per feed and each next one for twice as many.
"""

from __future__ import annotations

from collections.abc import Mapping

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from keepers.chain.client import ROUND_DATA_TYPES, FeedSource, Malformed, MulticallBatch
from keepers.chain.oracle_rules import FeedAnswer
from strategies.bars import Round

PHASE_SHIFT = 64
FIRST_BATCH = 3  # a bar's window in the steady state: the round after it, its own, the one before it
MAX_CALLS_PER_BATCH = 600  # about 6M gas of getRoundData through a proxy: far below a node's eth_call cap
# Rounds kept per feed (KnownRounds): a day of a feed updating every few minutes.
ROUNDS_KEPT = 512

_GET_ROUND_DATA = function_signature_to_4byte_selector("getRoundData(uint80)")
_LATEST_ROUND_DATA = function_signature_to_4byte_selector("latestRoundData()")


def latest_round_ids(feeds: Mapping[str, FeedSource]) -> dict[str, int]:
    """Name -> the feed's latest round id, in one read; a feed whose call fails is left out."""
    names = list(feeds)
    answers = MulticallBatch([(feeds[name].address, _LATEST_ROUND_DATA) for name in names],
                             [ROUND_DATA_TYPES] * len(names))()
    return {name: answer[0] for name, answer in zip(names, answers, strict=True) if _usable(answer)}


class KnownRounds:
    """Rounds of feeds seen already, by feed address and round id: a round never changes
    once it exists. A keeper notes each feed's latest round at every cycle, so the walk
    back for a bar's close finds the rounds it needs here, most bars without asking the
    chain; the newest ``ROUNDS_KEPT`` of each feed are kept."""

    def __init__(self) -> None:
        self._rounds: dict[str, dict[int, Round]] = {}

    def note(self, address: str, seen: Round) -> None:
        """Keeps ``seen``, a complete round of the feed at ``address``."""
        kept = self._rounds.setdefault(address.lower(), {})
        kept[seen.round_id] = seen
        if len(kept) > ROUNDS_KEPT:
            del kept[min(kept)]

    def note_latest(self, feed: FeedSource, answer: FeedAnswer) -> None:
        """Keeps a feed's latest round as a snapshot read it, when it is complete."""
        if _complete(answer.answer, answer.updated_at):
            self.note(feed.address, _round(feed, answer.round_id, answer.answer, answer.updated_at))

    def get(self, address: str, round_id: int) -> Round | None:
        """The round, if it was seen."""
        return self._rounds.get(address.lower(), {}).get(round_id)


def read_rounds(feeds: Mapping[str, FeedSource], since: Mapping[str, int],
                latest: Mapping[str, int] | None = None, known: KnownRounds | None = None) -> dict[str, list[Round]]:
    """Name -> the feed's rounds updated at or after ``since[name]`` (unix seconds), and the
    round in force at that time, oldest first. Walks back from ``latest`` (name -> round
    id; read when not given) to the first round of the current phase at most: through the
    ``known`` rounds first, then the chain's, which it notes there; rounds not complete
    (no answer, never updated) are skipped, a round id the feed does not know ends the walk."""
    latest = dict(latest) if latest is not None else latest_round_ids(feeds)
    known = known if known is not None else KnownRounds()
    rounds: dict[str, list[Round]] = {name: [] for name in feeds}
    next_id = {}
    for name in feeds:
        round_id = latest.get(name)
        while round_id is not None and round_id >= _phase_start(round_id):
            seen = known.get(feeds[name].address, round_id)
            if seen is None:
                next_id[name] = round_id  # the chain's rounds from here
                break
            rounds[name].append(seen)
            round_id = None if seen.updated_at < since[name] else round_id - 1
    size = FIRST_BATCH
    while next_id:
        per_feed = max(1, min(size, MAX_CALLS_PER_BATCH // len(next_id)))
        asked = [(name, round_id) for name, first in next_id.items()
                 for round_id in range(first, max(first - per_feed, _phase_start(first) - 1), -1)]
        answers = MulticallBatch(
            [(feeds[name].address, _GET_ROUND_DATA + encode(["uint80"], [round_id])) for name, round_id in asked],
            [ROUND_DATA_TYPES] * len(asked))()
        finished = set()
        for (name, round_id), answer in zip(asked, answers, strict=True):
            if name in finished:
                continue
            if answer is None or isinstance(answer, Malformed):
                finished.add(name)  # before the phase's first round, or not a feed at all
                continue
            if not _usable(answer):
                continue
            found = _round(feeds[name], answer[0], answer[1], answer[3])
            rounds[name].append(found)
            known.note(feeds[name].address, found)
            if answer[3] < since[name]:
                finished.add(name)  # the round in force at ``since``: nothing older is needed
        for name, round_id in asked:
            next_id[name] = round_id - 1
        for name in list(next_id):
            if name in finished or next_id[name] < _phase_start(next_id[name] + 1):
                del next_id[name]
        size *= 2
    return {name: sorted(found, key=lambda r: (r.updated_at, r.round_id)) for name, found in rounds.items()}


def _phase_start(round_id: int) -> int:
    """The first round id of the phase ``round_id`` belongs to."""
    return ((round_id >> PHASE_SHIFT) << PHASE_SHIFT) + 1


def _usable(answer: tuple | Malformed | None) -> bool:
    """A complete round: it answered, with a positive price, and was updated."""
    return isinstance(answer, tuple) and _complete(answer[1], answer[3])


def _complete(answer: int, updated_at: int) -> bool:
    return answer > 0 and updated_at > 0


def _round(feed: FeedSource, round_id: int, answer: int, updated_at: int) -> Round:
    return Round(round_id=round_id, price=answer / 10 ** feed.decimals, updated_at=updated_at)
