"""Constants and small helpers shared by the contract tests."""

FEED_DECIMALS = 8
# USD prices of the test tokens, and the USD depth each pool is seeded with.
PRICES_USD = {"WETH": 2_000, "WBTC": 60_000, "USDC": 1}
POOL_DEPTH_USD = 4_000_000
MAX_AGE = 3_600
DEFAULT_SLIPPAGE_BPS = 100


def units(amount: float, decimals: int) -> int:
    """Whole-token amount in base units (exact for the round numbers tests use)."""
    return int(round(amount * 10**decimals))
