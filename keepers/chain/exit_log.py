"""A user's protective exits of one token as the chain logged them: which ExitExecuted
happened, and the start of the protection each one spent (the block time of the latest
ProtectionUpdated or ProtectionRestarted before it), which is its trade id's key.

The keeper reads these only when the chain shows a protection it followed spent or
restarted without an exit of its own in the store (another caller executed it, after
the grace period, while the keeper was away): a few logs of one (user, token), found by
their indexed topics.
"""

from __future__ import annotations

from dataclasses import dataclass

from ape import chain

from keepers.base.errors import SentinelError
from keepers.base.retry import with_retries
from keepers.chain.client import read_feed
from keepers.chain.event_logs import address_topic, event_topic
from keepers.chain.oracle_rules import FeedAnswer
from strategies.exits import price_e18


@dataclass(frozen=True)
class LoggedExit:
    """One ExitExecuted of a (user, token): where it is, and the start it spent."""

    tx_hash: str
    block_number: int
    started_at: int | None  # None: no start logged before it (not from this deployment's history)


def logged_exits(executor, user: str, token: str, from_block: int) -> list[LoggedExit]:
    """Every exit of ``user``'s ``token`` from ``from_block`` on, oldest first, each with the
    protection start it spent."""
    web3 = chain.provider.web3
    who = [address_topic(user), address_topic(token)]

    def logs(topic):
        return with_retries(lambda: web3.eth.get_logs({
            "address": executor.address, "fromBlock": from_block, "toBlock": "latest", "topics": [topic, *who]}))

    starts = sorted((log["blockNumber"], log["logIndex"]) for log in logs(
        [event_topic(executor.ProtectionUpdated.abi), event_topic(executor.ProtectionRestarted.abi)]))
    exits = []
    logged = sorted(logs(event_topic(executor.ExitExecuted.abi)), key=lambda log: (log["blockNumber"], log["logIndex"]))
    for log in logged:
        before = [block for block, index in starts if (block, index) < (log["blockNumber"], log["logIndex"])]
        started_at = chain.provider.get_block(before[-1]).timestamp if before else None
        exits.append(LoggedExit("0x" + bytes(log["transactionHash"]).hex(), log["blockNumber"], started_at))
    return exits


def quote_price_at(feed_address: str, block: int) -> int:
    """The quote token's oracle price (USD, 18 decimals) in ``block``: what an exit's output
    was worth (its ExitExecuted carries only the token's price)."""
    answer = read_feed(feed_address, block)
    if not isinstance(answer, FeedAnswer):
        raise SentinelError(f"the quote feed {feed_address} gave no price at block {block}: {answer.reason}")
    return price_e18(answer.answer, answer.decimals)
