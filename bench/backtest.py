"""Backtester benchmark: speed for one strategy and for a parameter grid over 1M bars.

Run:  .venv/bin/python bench/backtest.py [--bars 1000000] [--reference-bars 20000]

Measures, in one run, on a seeded random walk of 1-minute bars with the open at the
previous close:
- one strategy (rsi_sma, defaults) through ``run_backtest`` with fees (30 bps) and
  slippage (10 bps): signals, fills, equity and every metric; median of repeats;
- one numpy pass (``np.cumsum``) over the same close array, as the floor;
- the plain per-bar reference loop of the tests, timed on a slice of
  ``--reference-bars`` bars and scaled linearly to the full length (it would take
  minutes on all of them);
- a 100-point grid (rsi_period x sma_period) through ``run_grid``, once in one
  process and once with ``--workers`` forked processes, and the peak resident memory
  of this process and of the largest worker (their sum over all workers bounds the
  grid's peak).
Numba compilation is done (or loaded from its cache) before timing.

Targets (issue 5): one strategy <= 50 ms; 100-point grid <= 5 s; grid memory <= 2 GB.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "strategies")]

from fixtures_backtest import reference_backtest  # noqa: E402  (the tests' reference loop)
from harness import timed  # noqa: E402  (bench/ is on sys.path: this file runs as a script)

from strategies.backtest import BacktestConfig, run_backtest, run_grid  # noqa: E402
from strategies.data import PriceData  # noqa: E402
from strategies.registry import build_strategy  # noqa: E402

GRID = {"rsi_period": list(range(2, 12)), "sma_period": list(range(50, 550, 50))}


def synthetic_prices(bars: int) -> PriceData:
    """A seeded geometric random walk of 1-minute bars."""
    rng = np.random.default_rng(20250724)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, bars)))
    open_ = np.concatenate(([100.0], close[:-1]))
    index = pd.date_range("2024-01-01", periods=bars, freq="1min", tz="UTC", name="timestamp")
    frame = pd.DataFrame({"open": open_, "close": close}, index=index)
    return PriceData({"SYN": frame}, pd.Timedelta(minutes=1), "<synthetic>")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--reference-bars", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()

    data = synthetic_prices(args.bars)
    close = data.bars["SYN"]["close"].to_numpy()
    config = BacktestConfig(fee_bps=30, slippage_bps=10)
    strategy = build_strategy("rsi_sma")
    run_backtest(synthetic_prices(1_000), strategy, config)  # compile or load numba code

    single = timed(lambda: run_backtest(data, strategy, config), args.repeats)
    signals = timed(lambda: strategy.signals(close), args.repeats)
    numpy_pass = timed(lambda: np.cumsum(close), args.repeats)
    trades = run_backtest(data, strategy, config).stats["# Trades"]

    piece = synthetic_prices(args.reference_bars)
    reference_piece = timed(lambda: reference_backtest(piece, [strategy], config), 1)
    reference = reference_piece * args.bars / args.reference_bars

    points = len(GRID["rsi_period"]) * len(GRID["sma_period"])
    grid_times = {}
    for workers in (1, args.workers):
        start = time.perf_counter()
        run_grid(data, lambda params: build_strategy("rsi_sma", params), GRID, config, workers=workers)
        grid_times[workers] = time.perf_counter() - start
    own_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"bars: {args.bars:,}; cpus: {os.cpu_count()}; load average: {os.getloadavg()[0]:.2f}")
    print(f"one strategy (rsi_sma, {trades} trades): {single * 1e3:.1f} ms "
          f"({args.bars / single:,.0f} bars/s), of which signals {signals * 1e3:.1f} ms  [target <= 50 ms]")
    print(f"one numpy pass (cumsum):  {numpy_pass * 1e3:.2f} ms  -> engine / numpy pass = {single / numpy_pass:.1f}x")
    print(f"reference per-bar loop:   {reference:.1f} s, scaled from {reference_piece:.2f} s on "
          f"{args.reference_bars:,} bars  -> reference / engine = {reference / single:,.0f}x")
    for workers, grid_time in grid_times.items():
        print(f"grid of {points} points, {workers} process(es): {grid_time:.2f} s "
              f"({points * args.bars / grid_time:,.0f} bars/s, {grid_time / points * 1e3:.1f} ms per point)  "
              f"[target <= 5 s]; reference / grid = {reference * points / grid_time:,.0f}x; "
              f"grid / {points} numpy passes = {grid_time / (numpy_pass * points):.1f}x")
    print(f"peak resident memory: this process {own_mib:,.0f} MiB, largest worker {worker_mib:,.0f} MiB; "
          f"grid bound {own_mib + args.workers * worker_mib:,.0f} MiB  [target <= 2048 MiB]")


if __name__ == "__main__":
    main()
