"""The Executor's events read straight from a receipt's raw logs: the values Ape's own
decoder gives for the same logs, and only the logs of the contract, the event and the
indexed topics asked for."""

from __future__ import annotations

import random
from types import SimpleNamespace

from ape import chain, project
from eth_abi import encode
from eth_utils import to_checksum_address

from keepers.chain.event_logs import address_topic, event_topic, receipt_events

EXECUTOR = to_checksum_address("0x" + "e1" * 20)


def raw_log(event_abi, values: dict, address: str = EXECUTOR, index: int = 0) -> dict:
    """A log as a node returns it in a receipt, with ``values`` encoded as the event's ABI says."""
    indexed = [argument for argument in event_abi.inputs if argument.indexed]
    unindexed = [argument for argument in event_abi.inputs if not argument.indexed]
    topics = [event_topic(event_abi)] + ["0x" + encode([argument.canonical_type], [values[argument.name]]).hex()
                                         for argument in indexed]
    data = encode([argument.canonical_type for argument in unindexed], [values[a.name] for a in unindexed])
    return {"address": address, "topics": [bytes.fromhex(topic[2:]) for topic in topics], "data": data,
            "blockNumber": 7, "blockHash": b"\x01" * 32, "transactionHash": b"\x02" * 32, "logIndex": index,
            "transactionIndex": 0}


def random_trade(rng: random.Random) -> dict:
    return {"tradeId": rng.randbytes(32), "user": to_checksum_address(rng.randbytes(20)),
            "keeper": to_checksum_address(rng.randbytes(20)), "tokenIn": to_checksum_address(rng.randbytes(20)),
            "tokenOut": to_checksum_address(rng.randbytes(20)), "amountIn": rng.randrange(2**256),
            "amountOut": rng.randrange(2**256), "priceIn": rng.randrange(2**256), "priceOut": rng.randrange(2**256),
            "roundIn": rng.randrange(2**80), "roundOut": rng.randrange(2**80)}


def test_trade_events_read_as_apes_decoder_reads_them_and_only_the_one_asked_for():
    abi = project.Executor.contract_type.events["TradeExecuted"]
    rng = random.Random(29)
    for _ in range(50):
        wanted, other = random_trade(rng), random_trade(rng)
        logs = [raw_log(abi, other, index=0), raw_log(abi, wanted, address="0x" + "99" * 20, index=1),
                raw_log(abi, wanted, index=2)]
        receipt = SimpleNamespace(logs=logs)
        (read,) = receipt_events(receipt, EXECUTOR, abi, "0x" + wanted["tradeId"].hex())
        (ape_read,) = chain.provider.network.ecosystem.decode_logs([logs[2]], abi)
        assert read == dict(ape_read.event_arguments) == wanted


def test_exit_events_match_on_two_indexed_addresses():
    abi = project.Executor.contract_type.events["ExitExecuted"]
    user, token = to_checksum_address("0x" + "aa" * 20), to_checksum_address("0x" + "bb" * 20)
    values = {"user": user, "token": token, "caller": to_checksum_address("0x" + "cc" * 20), "trigger": 2,
              "amountIn": 5, "amountOut": 9, "bounty": 1, "priceUsd": 3 * 10**18, "roundId": 11, "highRoundId": 10}
    elsewhere = {**values, "token": to_checksum_address("0x" + "dd" * 20)}
    receipt = SimpleNamespace(logs=[raw_log(abi, elsewhere), raw_log(abi, values, index=1)])
    assert list(receipt_events(receipt, EXECUTOR, abi, address_topic(user), address_topic(token))) == [values]
    assert list(receipt_events(receipt, EXECUTOR, abi, address_topic(token))) == []
