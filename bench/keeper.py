"""Keeper benchmark: one user's cycle when nothing trades, next to one bare RPC round trip.

Run:  .venv/bin/python bench/keeper.py [--cycles 200]

Starts its own anvil (stopped by process id), deploys the local market and system,
funds one user holding 3 tokens (WETH, WBTC, LTC, with 250 bars of history), then measures in one run:
- the floor: one bare JSON-RPC round trip (``eth_blockNumber``) to the same anvil;
- a cycle that reads prices, checks risk and finds every bar already decided (the
  steady state between two bars): median wall time and RPC round trips;
- a cycle on a new bar: every strategy decides on 250 bars (data/config/strategies.yaml:
  8 strategies over the 3 tokens), none of which trades.

Targets (issue 12): <= 50 ms per user and <= 3 RPC round trips per cycle.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness import ROOT, ape_on_private_anvil, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    args = parser.parse_args()
    with ape_on_private_anvil():
        measure(args.cycles)


def measure(cycles: int) -> None:
    from ape import chain
    from helpers_keeper import calm_then_dip, deploy_local_system, user_entry

    from keepers.engine.bars import backfill_from_file
    from keepers.engine.cycle import run_cycle
    from keepers.engine.startup import build_context
    from keepers.persistence.store import Store

    folder = Path(tempfile.mkdtemp(prefix="bench-keeper-"))
    user = user_entry("bench", 3, ["WETH", "WBTC", "LTC"])
    system = deploy_local_system(folder, [user], f"sqlite:///{folder / 'store.db'}",
                                 strategies_file=str(ROOT / "data" / "config" / "strategies.yaml"))
    config = system.config()
    store = Store.open(config.settings.resolved_store_url())
    # A calm history: 250 bars that end without any signal on the newest one.
    history = {series: calm_then_dip(system.prices[token], bars=250, dip=1.0)
               for token, series in (("WETH", "ETH"), ("WBTC", "BTC"), ("LTC", "LTC"))}
    backfill_from_file(store, system.write_history(history), list(history), 86_400)
    context = build_context(config, system.spec, system.record, store, local_chain=True, users=config.users)
    (bench_user,) = config.users

    strategies = sum(len(found) for found in context.user_strategies.values())
    decide = run_cycle(bench_user, context, 0)  # also compiles the numba indicators
    assert decide.error is None and decide.signals == strategies and decide.trades_ok == 0, decide.line()
    web3_provider = chain.provider.web3.provider
    floor = timed(lambda: web3_provider.make_request("eth_blockNumber", []), cycles)
    steady, rpc_calls = [], []
    for number in range(cycles):
        start = time.perf_counter()
        result = run_cycle(bench_user, context, number)
        steady.append(time.perf_counter() - start)
        rpc_calls.append(result.rpc_calls)
        assert result.error is None and result.signals == 0, result.line()
    decisions = []
    for _ in range(5):
        system.next_bar()
        result = run_cycle(bench_user, context, 0)
        assert result.error is None and result.signals == strategies, result.line()
        decisions.append(result.duration_seconds)

    cycle_ms = statistics.median(steady) * 1000
    floor_ms = floor * 1000
    print(f"bare RPC round trip (floor)         {floor_ms:8.2f} ms")
    print(f"cycle, nothing to decide (3 tokens)  {cycle_ms:8.2f} ms   {cycle_ms / floor_ms:6.1f}x floor   "
          f"RPC round trips {statistics.median(rpc_calls):.0f} (max {max(rpc_calls)})")
    print(f"cycle on a new bar ({strategies} decisions)     {statistics.median(decisions) * 1000:8.2f} ms")
    print(f"target: <= 50 ms and <= 3 RPC round trips per cycle -> "
          f"{'met' if cycle_ms <= 50 and max(rpc_calls) <= 3 else 'NOT met'}")



if __name__ == "__main__":
    main()
