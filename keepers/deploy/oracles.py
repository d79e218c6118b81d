"""Checks each token's Chainlink feed and registers it in the Executor.

A feed is registered only after it has been read and found sound: code at the
address, a description that names the token's pair, a positive and fresh answer.
Registration is idempotent: nothing is sent when the Executor already holds the same
feed, staleness limit and bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ape import Contract, chain
from ape.exceptions import ContractLogicError

from keepers.base.errors import SentinelError
from keepers.base.units import to_base_units
from keepers.chain.access import AdminCall, send
from keepers.chain.artifacts import AGGREGATOR_V3_ABI, npm_abi
from keepers.chain.onchain import check_has_code
from keepers.settings.network import TokenSpec


@dataclass(frozen=True)
class FeedReading:
    """What a feed answered when it was checked."""

    decimals: int
    description: str
    answer: int
    updated_at: int
    age_seconds: int


def read_feed(feed_address: str, token: TokenSpec) -> FeedReading:
    """Reads and validates ``token``'s feed; SentinelError naming the problem and fix."""
    field = f"tokens.{token.symbol}.feed"
    check_has_code(feed_address, field)
    feed = Contract(feed_address, abi=npm_abi(AGGREGATOR_V3_ABI))
    try:
        decimals = feed.decimals()
        description = feed.description()
        round_data = feed.latestRoundData()
    except ContractLogicError:
        raise SentinelError(f"{field}: {feed_address} does not answer as a Chainlink AggregatorV3 feed") from None
    now = chain.blocks.head.timestamp
    reading = FeedReading(
        decimals=decimals,
        description=description,
        answer=round_data.answer,
        updated_at=round_data.updatedAt,
        age_seconds=now - round_data.updatedAt,
    )
    if description != token.feed_description:
        raise SentinelError(
            f"{field}: {feed_address} describes itself as {description!r}, not {token.feed_description!r}; "
            "is this the right feed for the token?"
        )
    if reading.answer <= 0:
        raise SentinelError(f"{field}: answer {reading.answer} is not a positive price; choose a working feed")
    if reading.updated_at == 0 or reading.updated_at > now:
        raise SentinelError(f"{field}: updatedAt {reading.updated_at} is not a valid time (block time {now})")
    if reading.age_seconds > token.max_age_seconds:
        raise SentinelError(
            f"{field}: last update {reading.age_seconds} s ago exceeds max_age_seconds {token.max_age_seconds}; "
            "the feed is stale (or raise max_age_seconds to the feed's heartbeat plus margin)"
        )
    return reading


def register_feed(executor, manager, owner, token_address: str, feed_address: str, token: TokenSpec,
                  reading: FeedReading) -> str | None:
    """Sets the feed in the Executor (at once, or scheduled when the owner's role has a
    delay) unless it already holds the same; what was done, or None."""
    min_answer = to_base_units(token.min_price_usd, reading.decimals, f"tokens.{token.symbol}.min_price_usd")
    max_answer = to_base_units(token.max_price_usd, reading.decimals, f"tokens.{token.symbol}.max_price_usd")
    current = executor.feedConfig(token_address)
    desired = (feed_address, token.max_age_seconds, min_answer, max_answer)
    if (current.feed, current.maxAge, current.minAnswer, current.maxAnswer) == desired:
        return None
    return send(manager, AdminCall(executor, "setFeed", (token_address, *desired)), owner)


def setup_oracles(executor, manager, owner, tokens: dict[str, str], feeds: dict[str, str], specs: list[TokenSpec],
                  report: Callable[[str], None]) -> int:
    """Checks every feed first, then registers (or schedules) the ones that changed;
    returns how many changed."""
    readings = {spec.symbol: read_feed(feeds[spec.symbol], spec) for spec in specs}
    sent = 0
    for spec in specs:
        reading = readings[spec.symbol]
        price = reading.answer / 10**reading.decimals
        done = register_feed(executor, manager, owner, tokens[spec.symbol], feeds[spec.symbol], spec, reading)
        sent += done is not None
        status = done or "unchanged"
        report(f"{spec.symbol}: {reading.description} = {price:,.4f} USD, {reading.age_seconds} s old -> {status}")
    return sent
