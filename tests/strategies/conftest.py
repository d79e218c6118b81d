"""Fixtures for the strategies suite: the real sample prices and seeded random series."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

SAMPLE_PRICES = Path(__file__).resolve().parents[2] / "data" / "sample_prices.csv"


@pytest.fixture(scope="session")
def sample_closes() -> dict[str, np.ndarray]:
    """Daily closes per token (BTC, ETH, LTC) from data/sample_prices.csv, in time order."""
    rows: dict[str, list[tuple[str, float]]] = defaultdict(list)
    with SAMPLE_PRICES.open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["token"]].append((row["timestamp"], float(row["close"])))
    return {token: np.array([close for _, close in sorted(bars)]) for token, bars in rows.items()}


@pytest.fixture(scope="session")
def random_series() -> dict[str, np.ndarray]:
    """Seeded random price series of different shapes and scales."""
    rng = np.random.default_rng(20240828)
    return {
        "random_walk": 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, 5000))),
        "noise_tiny": rng.random(3000) * 1e-3,
        "noise_huge": 1e6 + rng.normal(0.0, 1e3, 3000),
        "around_zero": rng.normal(0.0, 1.0, 2000),
        "two_decimals": np.round(50.0 + np.cumsum(rng.normal(0.0, 0.5, 3000)), 2) + 100.0,
    }
