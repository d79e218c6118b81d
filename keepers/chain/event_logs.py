"""One contract's events read straight from a receipt's raw logs.

Ape's ``receipt.events`` decodes every log of the transaction (a swap's Transfer, Sync
and Swap logs of the tokens and the pool) before a filter picks the one wanted: most of
a trade's settling time in a wave (bench/wave.py). Here only the logs of the contract
whose first topic is the event's signature (and whose indexed topics match, if given)
are decoded, with eth-abi: the indexed values from the topics, the rest from the data.
"""

from __future__ import annotations

from collections.abc import Iterator

from ape.api import ReceiptAPI
from eth_abi import decode
from eth_utils import keccak, to_checksum_address


def event_topic(event_abi) -> str:
    """An event's topic 0 (the hash of its signature), as logs are filtered by it."""
    return "0x" + keccak(text=event_abi.selector).hex()


def address_topic(address: str) -> str:
    """An address as an indexed topic (left-padded to 32 bytes, lower case)."""
    return "0x" + "00" * 12 + to_checksum_address(address)[2:].lower()


def receipt_events(receipt: ReceiptAPI, address: str, event_abi, *topics: str) -> Iterator[dict]:
    """The ``event_abi`` events that the contract at ``address`` logged in ``receipt``, in
    log order, each as {argument name: value} (addresses checksummed); ``topics``: the
    first indexed arguments' topics (0x-hex) a log must have. Indexed arguments are of
    static types (a dynamic one's topic is its hash, which cannot be decoded)."""
    wanted = [event_topic(event_abi), *(topic.lower() for topic in topics)]
    indexed = [argument for argument in event_abi.inputs if argument.indexed]
    unindexed = [argument for argument in event_abi.inputs if not argument.indexed]
    addresses = {argument.name for argument in event_abi.inputs if argument.type == "address"}
    for log in receipt.logs:
        log_topics = [_hex(topic) for topic in log["topics"]]
        if _hex(log["address"]) != address.lower() or log_topics[:len(wanted)] != wanted:
            continue
        values = dict(zip((argument.name for argument in unindexed),
                          decode([argument.canonical_type for argument in unindexed], _bytes(log["data"])),
                          strict=True))
        for argument, topic in zip(indexed, log_topics[1:], strict=True):
            (values[argument.name],) = decode([argument.canonical_type], bytes.fromhex(topic[2:]))
        yield {name: to_checksum_address(value) if name in addresses else value for name, value in values.items()}


def _hex(value) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


def _bytes(value) -> bytes:
    return bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
