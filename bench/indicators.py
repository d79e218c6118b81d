"""Indicator and strategy benchmark: our numba indicators against TA-Lib on 1M bars.

Run:  .venv/bin/python bench/indicators.py [--bars 1000000] [--repeats 20]

On one seeded random walk, after numba's compilation (or cache load), prints for each
indicator the best time of ``--repeats`` runs, TA-Lib's best time on the same array in
the same process, and their ratio; then each strategy's whole-series ``signals`` at
its default parameters, scaled to ms per million bars. Best-of-N, because the
question is what the code costs, not what the machine's other tenants cost.

Targets (issue 4): every indicator within 1.5x of TA-Lib; every strategy under 30 ms
per million bars. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import talib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strategies import indicators  # noqa: E402
from strategies.registry import STRATEGIES  # noqa: E402

INDICATOR_RATIO_TARGET = 1.5
STRATEGY_MS_PER_MILLION_TARGET = 30.0

# Ours and TA-Lib's call for the same indicator at the same (common) parameters.
PAIRS = {
    "SMA(20)": (lambda c: indicators.sma(c, 20), lambda c: talib.SMA(c, 20)),
    "EMA(20)": (lambda c: indicators.ema(c, 20), lambda c: talib.EMA(c, 20)),
    "RSI(14)": (lambda c: indicators.rsi(c, 14), lambda c: talib.RSI(c, 14)),
    "BBANDS(20, 2)": (
        lambda c: indicators.bollinger_bands(c, 20, 2.0),
        lambda c: talib.BBANDS(c, 20, 2.0, 2.0, talib.MA_Type.SMA),
    ),
    "MACD(12, 26, 9)": (
        lambda c: indicators.macd(c, 12, 26, 9),
        lambda c: talib.MACD(c, 12, 26, 9),
    ),
}


def best_ms(call, close: np.ndarray, repeats: int) -> float:
    """Fastest of ``repeats`` timed calls, in milliseconds (one untimed call first)."""
    call(close)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(close)
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(20250724)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, args.bars)))
    missed = []

    print(f"{args.bars:,} bars, best of {args.repeats} runs (numba compiled beforehand)")
    print(f"{'indicator':<18}{'ours ms':>10}{'TA-Lib ms':>12}{'ratio':>8}")
    for name, (ours, theirs) in PAIRS.items():
        ours_ms = best_ms(ours, close, args.repeats)
        theirs_ms = best_ms(theirs, close, args.repeats)
        ratio = ours_ms / theirs_ms
        print(f"{name:<18}{ours_ms:>10.2f}{theirs_ms:>12.2f}{ratio:>8.2f}")
        if ratio > INDICATOR_RATIO_TARGET:
            missed.append(f"{name} is {ratio:.2f}x TA-Lib (target {INDICATOR_RATIO_TARGET}x)")

    print(f"\n{'strategy signals':<18}{'ms':>10}{'ms / 1M bars':>14}")
    for cls in STRATEGIES:
        strategy = cls()
        ms = best_ms(strategy.signals, close, args.repeats)
        per_million = ms * 1_000_000 / args.bars
        print(f"{cls.name:<18}{ms:>10.2f}{per_million:>14.2f}")
        if per_million > STRATEGY_MS_PER_MILLION_TARGET:
            missed.append(
                f"{cls.name} takes {per_million:.1f} ms per 1M bars "
                f"(target {STRATEGY_MS_PER_MILLION_TARGET:g})"
            )

    for line in missed:
        print(f"MISSED: {line}")
    print("all targets met" if not missed else f"{len(missed)} target(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
