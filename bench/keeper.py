"""Keeper benchmark: one user's cycle when nothing trades, next to one bare RPC round trip.

Run:  .venv/bin/python bench/keeper.py [--cycles 200] [--history 20000]

Starts its own anvil (stopped by process id), deploys the local market and system,
funds one user holding 3 tokens (WETH, WBTC, LTC, with 250 bars of history), then measures in one run:
- the floor: one bare JSON-RPC round trip (``eth_blockNumber``) to the same anvil;
- a cycle that reads prices, checks risk and finds every bar already decided (the
  steady state between two bars): median wall time and RPC round trips;
- a cycle on a new bar: every strategy decides on 250 bars (data/config/strategies.yaml:
  8 strategies over the 3 tokens), none of which trades;
- the steady cycle again once the user's history holds ``--history`` closed round trips
  (synthetic mined trades and risk trades in the store, positions built from them).

Targets (issue 12): <= 50 ms per user and <= 3 RPC round trips per cycle; (issue 24)
the steady cycle <= 4x the floor (on a quiet machine), the cycle with the history at
most 1.2x the cycle without.
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
    parser.add_argument("--history", type=int, default=20_000, help="closed round trips added for the last run")
    args = parser.parse_args()
    with ape_on_private_anvil():
        measure(args.cycles, args.history)


def measure(cycles: int, round_trips: int) -> None:
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
    steady, rpc_calls = steady_cycles(run_cycle, bench_user, context, cycles)
    decisions = []
    for _ in range(5):
        system.next_bar()
        result = run_cycle(bench_user, context, 0)
        assert result.error is None and result.signals == strategies, result.line()
        decisions.append(result.duration_seconds)

    add_round_trips(store, bench_user.id, round_trips)
    with_history, _ = steady_cycles(run_cycle, bench_user, context, cycles)

    cycle_ms = statistics.median(steady) * 1000
    history_ms = statistics.median(with_history) * 1000
    floor_ms = floor * 1000
    print(f"bare RPC round trip (floor)         {floor_ms:8.2f} ms")
    print(f"cycle, nothing to decide (3 tokens)  {cycle_ms:8.2f} ms   {cycle_ms / floor_ms:6.1f}x floor   "
          f"RPC round trips {statistics.median(rpc_calls):.0f} (max {max(rpc_calls)})")
    print(f"cycle on a new bar ({strategies} decisions)     {statistics.median(decisions) * 1000:8.2f} ms")
    print(f"cycle, nothing to decide, {round_trips:,} round trips in the history  {history_ms:8.2f} ms   "
          f"{history_ms / cycle_ms:5.2f}x the cycle without")
    print(f"target: <= 50 ms and <= 3 RPC round trips per cycle -> "
          f"{'met' if cycle_ms <= 50 and max(rpc_calls) <= 3 else 'NOT met'}; "
          f"cycle <= 4x floor -> {'met' if cycle_ms <= 4 * floor_ms else 'NOT met'}; "
          f"history <= 1.2x -> {'met' if history_ms <= 1.2 * cycle_ms else 'NOT met'}")


def steady_cycles(run_cycle, user, context, cycles: int) -> tuple[list[float], list[int]]:
    """Wall times and RPC round trips of ``cycles`` cycles that find every bar decided."""
    times, rpc_calls = [], []
    for number in range(cycles):
        start = time.perf_counter()
        result = run_cycle(user, context, number)
        times.append(time.perf_counter() - start)
        rpc_calls.append(result.rpc_calls)
        assert result.error is None and result.signals == 0, result.line()
    return times, rpc_calls


def add_round_trips(store, user_id: str, count: int) -> None:
    """``count`` closed round trips (a BUY and a SELL of 0.01 WETH, mined, with their risk
    records) in the user's past, and the positions they leave."""
    from datetime import UTC, datetime, timedelta

    from keepers.engine.positions import position_row, sleeves
    from keepers.persistence.tables import MINED, RiskTradeRow, TradeRow

    start = datetime(2015, 1, 1, tzinfo=UTC)
    trades, records = [], []
    for number in range(2 * count):
        when = start + timedelta(hours=number)
        buying = number % 2 == 0
        token_in, token_out = ("0x" + "11" * 20, "0x" + "22" * 20) if buying else ("0x" + "22" * 20, "0x" + "11" * 20)
        trades.append(TradeRow(
            trade_id=f"0x{number:064x}", user_id=user_id, user_address="0x" + "33" * 20, keeper_id="bench",
            chain_id=31337, asset="WETH", strategy="history", side="BUY" if buying else "SELL", bar_time=when,
            token_in=token_in, token_out=token_out, amount_in=20 * 10**6 if buying else 10**16,
            amount_out=10**16 if buying else 21 * 10**6, status=MINED, block_number=number, created_at=when,
            updated_at=when, dry_run=False, replaced_tx_hashes=[]))
        records.append(RiskTradeRow(user_id=user_id, timestamp=when, asset="WETH", success=True,
                                    pnl_quote=None if buying else 1.0, trade_id=f"0x{number:064x}"))
    with store.session() as session:
        session.add_all(trades)
        session.add_all(records)
    held = sleeves(store.trades(user_id, [MINED]), 6)
    store.rebuild_positions(user_id, [position_row(user_id, asset, strategy, sleeve)
                                      for (asset, strategy), sleeve in held.items()])



if __name__ == "__main__":
    main()
