"""Constants and small helpers shared by the contract tests."""

from __future__ import annotations

import re
from contextlib import contextmanager

import ape
from ape.exceptions import CustomError
from hexbytes import HexBytes

FEED_DECIMALS = 8
# USD prices of the test tokens, and the USD depth each pool is seeded with.
PRICES_USD = {"WETH": 2_000, "WBTC": 60_000, "USDC": 1}
POOL_DEPTH_USD = 4_000_000
MAX_AGE = 3_600
# MockFaultyFeed.Fault (0 is None: a healthy answer)
FAULT_REVERTS, FAULT_SHORT_DATA, FAULT_HUGE_DATA, FAULT_ROUND_ID_OUT_OF_RANGE = range(1, 5)
DEFAULT_SLIPPAGE_BPS = 100
DEFAULT_LOSS_BUDGET_USD = 10**6 * 10**18  # a million USD per day: never the limit unless a test says so
MAX_BPS = 10_000


def units(amount: float, decimals: int) -> int:
    """Whole-token amount in base units (exact for the round numbers tests use)."""
    return int(round(amount * 10**decimals))


# Ape decodes custom errors of transactions, but leaves those of eth_call (views,
# deployments) as "custom error 0x<selector>: <data>"; ape.reverts(SomeError) then
# passes for ANY revert. `reverts_with` decodes those too and always checks the name.
_UNDECODED_ERROR = re.compile(r"^(?:custom error )?0x([0-9a-fA-F]{8})(?::\s*)?([0-9a-fA-F]*)$")


def _normalised(value):
    value = getattr(value, "address", value)
    return bytes(value) if isinstance(value, (bytes, bytearray, HexBytes)) else value


def _decoded(exc, error) -> tuple[str, dict]:
    if isinstance(exc, CustomError):
        return type(exc).__name__, dict(exc.inputs)
    if match := _UNDECODED_ERROR.match(str(exc.revert_message or "")):
        raw = HexBytes("0x" + match[1] + match[2])
        ecosystem = ape.chain.provider.network.ecosystem
        if decoded := ecosystem.decode_custom_error(raw, error.contract.address):
            return type(decoded).__name__, dict(decoded.inputs)
    return repr(exc.revert_message), {}


@contextmanager
def reverts_with(error, **inputs):
    """Like `ape.reverts(error, **inputs)`, but the revert must decode to `error` by name
    and every named input must exist and match (addresses, accounts and bytes compared as such)."""
    with ape.reverts() as info:
        yield info
    name, actual = _decoded(info.value, error)
    assert name == error.__name__, f"expected {error.__name__}, reverted with {name}"
    for key, expected in inputs.items():
        assert key in actual, f"{name} has no input {key!r} (inputs: {actual})"
        assert _normalised(actual[key]) == _normalised(expected), f"{name}.{key}: {actual[key]!r} != {expected!r}"


def custody_state(vault, tokens, holders: dict) -> dict:
    """Every balance custody is about: each holder's vault balance and wallet balance,
    the vault's real balance and accounted total, per token symbol."""
    state = {}
    for token in tokens:
        symbol = token.symbol()
        state["accounted", symbol] = vault.accountedTotal(token)
        state["wallet", "vault", symbol] = token.balanceOf(vault)
        for name, holder in holders.items():
            state["vault", name, symbol] = vault.balanceOf(holder, token)
            state["wallet", name, symbol] = token.balanceOf(holder)
    return state


def changes(before: dict, after: dict) -> dict:
    """The entries that moved, as after - before."""
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


def oracle_amount_out(
    amount_in, answer_in, answer_out, decimals_in, decimals_out,
    feed_decimals_in=FEED_DECIMALS, feed_decimals_out=FEED_DECIMALS,
):  # fmt: skip
    """The oracle value of `amount_in` in tokenOut units, by hand: both answers scaled to
    18-decimal USD, the value in USD rounded up, then in tokenOut rounded up (the user's favour)."""
    price_in = answer_in * 10 ** (18 - feed_decimals_in)
    price_out = answer_out * 10 ** (18 - feed_decimals_out)
    value_usd = -(-amount_in * price_in // 10**decimals_in)
    return -(-value_usd * 10**decimals_out // price_out)


def oracle_floor(oracle_out, slippage_bps):
    """The least accepted output: the oracle value less slippage, rounded up."""
    return -(-oracle_out * (MAX_BPS - slippage_bps) // MAX_BPS)
