"""Multicall3's answer read straight from its ABI encoding: the same as eth-abi's strict
decoder on random answers, and a one-line error on every malformed one it refuses."""

from __future__ import annotations

import random

import pytest
from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError

from keepers.base.errors import SentinelError
from keepers.chain.multicall_answer import aggregate3_results

TYPES = ["(bool,bytes)[]"]


def random_answer(rng: random.Random) -> list[tuple[bool, bytes]]:
    return [(rng.random() < 0.8, rng.randbytes(rng.choice([0, 1, 31, 32, 33, 64, 96, 200])))
            for _ in range(rng.randrange(0, 40))]


def test_random_answers_read_as_eth_abi_reads_them():
    rng = random.Random(24)
    for _ in range(300):
        entries = random_answer(rng)
        data = encode(TYPES, [entries])
        assert aggregate3_results(data) == [(ok, bytes(blob)) for ok, blob in decode(TYPES, data)[0]] == entries


def malformed(data: bytearray, where: int, value: int) -> bytes:
    data[where:where + 32] = value.to_bytes(32, "big")
    return bytes(data)


@pytest.mark.parametrize("spoil", [
    lambda data: bytes(data[:-32]),  # cut short
    lambda data: malformed(data, 32, 10**6),  # more entries than fit
    lambda data: malformed(data, 0, 2**255),  # an offset past the end
    lambda data: malformed(data, 128, 2),  # the first entry's flag is not a bool
    lambda data: bytes(data[:-1]) + b"\x01",  # non-zero padding after the last return data
])
def test_a_malformed_answer_is_refused_as_eth_abi_refuses_it(spoil):
    data = spoil(bytearray(encode(TYPES, [[(True, b"\x01" * 40), (False, b"\x02" * 3)]])))
    with pytest.raises(DecodingError):
        decode(TYPES, data)
    with pytest.raises(SentinelError, match="^Multicall3 answer: not an aggregate3 result"):
        aggregate3_results(data)
