"""Wave benchmark (issue 29): W users whose strategies all trade on the same bar, one
keeper account, trades in flight at consecutive nonces, against the chain's own limit.

Run:  .venv/bin/python bench/wave.py [--users 300] [--block-time 2] [--in-flight 1000]

Starts its own anvil (stopped by process id), deploys the local market and system, funds
W users spread over WETH, WBTC and LTC (25 USDC a trade: the wave's price impact stays
inside the trades' tolerance), gives each series a history whose last closed bar is a
dip, so every user's Bollinger strategy buys on it. Then anvil mines a block every
``--block-time`` seconds (interval mining, 30M gas a block) and one keeper process runs
every user's cycle once on that bar with ``max_trades_in_flight`` = ``--in-flight``: each
cycle sends its trade without waiting, the batch settles them together (``--in-flight 1``:
each cycle waits for its receipt, as before issue 29, for comparison).

Figures, all from this one run:
- the wave's time: from the first cycle on the new bar to the block of the last trade
  mined (wall clock: a thread notes when each block appears), and to the last trade
  settled in the store; the send phase (the cycles themselves) inside it;
- the chain's limit: the blocks the trades need (their gas over the block gas limit,
  rounded up) x the block time; the ratio of the wave to it (target: within 2x);
- per trade: the JSON-RPC requests of the keeper process (batches count one) and its
  store transactions (SQLAlchemy's ``begin`` events, reads included);
- the checks: every user one mined trade, no trade id twice, nothing left unfinished,
  the store equal to the chain (the fault suite's own check).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from harness import ape_on_private_anvil

TOKENS = ("WETH", "WBTC", "LTC")
SERIES = {"WETH": "ETH", "WBTC": "BTC", "LTC": "LTC"}
KEEPER_ACCOUNTS = (1, 7)  # the keeper and the second keeper the local system allows: no user there
TRADE_USDC = 25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--block-time", type=int, default=2, help="seconds between anvil's blocks in the wave")
    parser.add_argument("--in-flight", type=int, default=1000, help="max_trades_in_flight of the keeper")
    args = parser.parse_args()
    with ape_on_private_anvil("--gas-limit", "30000000"):
        measure(args.users, args.block_time, args.in_flight)


class BlockClock(threading.Thread):
    """Notes the wall time each new block number first answers (polled every 50 ms
    through a connection of its own)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.seen, self.stopping = url, {}, threading.Event()

    def run(self) -> None:
        from helpers_e2e import rpc

        while not self.stopping.wait(0.05):
            self.seen.setdefault(int(rpc(self.url, "eth_blockNumber"), 16), time.perf_counter())


def measure(user_count: int, block_time: int, in_flight: int) -> None:
    from ape import chain
    from helpers_keeper import (
        assert_store_matches_chain,
        calm_then_dip,
        deploy_local_system,
        many_users,
        with_test_accounts,
    )
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from keepers.engine.bars import backfill_from_file
    from keepers.engine.scheduler import Scheduler
    from keepers.engine.startup import build_context, reconcile_at_start
    from keepers.persistence.store import Store
    from keepers.persistence.tables import MINED

    folder = Path(tempfile.mkdtemp(prefix="bench-wave-"))
    users = many_users(user_count, KEEPER_ACCOUNTS, TOKENS, quote_amount=TRADE_USDC)
    with_test_accounts(users)
    started = time.perf_counter()
    system = deploy_local_system(folder, users, f"sqlite:///{folder / 'store.db'}", lease_seconds=600,
                                 max_trades_in_flight=in_flight, tx_timeout_seconds=60)
    print(f"deployed and funded {user_count} users in {time.perf_counter() - started:.0f} s")
    system.next_bar()
    history = system.write_history({SERIES[token]: calm_then_dip(system.prices[token]) for token in TOKENS})
    config = system.config()
    store = Store.open(config.settings.resolved_store_url())
    backfill_from_file(store, history, list(SERIES.values()), 86_400)
    context = build_context(config, system.spec, system.record, store, local_chain=True, users=config.users)
    lines: list[str] = []
    scheduler = Scheduler(context, config.users, report=lines.append)
    reconcile_at_start(context, scheduler.users, lines.append)

    provider = chain.provider
    gas_limit = chain.blocks.head.gas_limit
    provider.make_request("evm_setAutomine", [False])
    provider.make_request("evm_setIntervalMining", [block_time])
    clock = BlockClock(os.environ["APE_FOUNDRY_HOST"])
    clock.start()
    transactions = Counter()

    def begun(_connection) -> None:
        transactions["begun"] += 1

    event.listen(Engine, "begin", begun)
    requests_before = context.client.rpc_calls
    try:
        wave_start = time.perf_counter()
        results = scheduler.run_once()
        wave_seconds = time.perf_counter() - wave_start
    finally:
        requests = context.client.rpc_calls - requests_before
        event.remove(Engine, "begin", begun)
        clock.stopping.set()
        clock.join()
        provider.make_request("evm_setIntervalMining", [0])
        provider.make_request("evm_setAutomine", [True])

    rows = store.trades()
    ids = assert_store_matches_chain(store, system)  # no twice, none unfinished, store == chain
    statuses = Counter(row.status for row in rows)
    assert statuses == {MINED: user_count} and len(ids) == user_count, (statuses, [r.line() for r in results][:5])
    assert sorted(row.user_id for row in rows) == sorted(user["id"] for user in users), "a user's trade lost"
    blocks = sorted({row.block_number for row in rows})
    gas = sum(row.gas_used for row in rows)
    blocks_needed = math.ceil(gas / gas_limit)
    limit_seconds = blocks_needed * block_time
    mined_seconds = clock.seen[blocks[-1]] - wave_start
    send_seconds = sum(result.duration_seconds for result in results)
    cycle_ms = statistics.median(result.duration_seconds for result in results) * 1000
    per_block = Counter(row.block_number for row in rows)
    print(f"wave: {user_count} trades on one bar, one keeper account (max_trades_in_flight {in_flight}), "
          f"{block_time} s blocks of {gas_limit:,} gas")
    print(f"  trades: {statuses[MINED]} mined, 0 lost, 0 twice, 0 unfinished; store == chain")
    print(f"  gas: {gas:,} in all, {gas // user_count:,} a trade; blocks needed {blocks_needed}, "
          f"used {len(blocks)} (blocks {blocks[0]}..{blocks[-1]}, at most {max(per_block.values())} trades in one)")
    print(f"  the chain's limit (blocks needed x block time)        {limit_seconds:8.1f} s")
    print(f"  the wave: first cycle to the last trade mined         {mined_seconds:8.1f} s   "
          f"{mined_seconds / limit_seconds:5.2f}x the limit")
    print(f"  the wave: first cycle to the last trade settled       {wave_seconds:8.1f} s   "
          f"{wave_seconds / limit_seconds:5.2f}x the limit")
    print(f"  the send phase (the {user_count} cycles, each sending its trade)  {send_seconds:8.1f} s   "
          f"{send_seconds / user_count * 1000:.0f} ms a trade (cycle median {cycle_ms:.0f} ms)")
    print(f"  per trade (the whole wave: reads, plans, signing, broadcasts, receipts, settling): "
          f"{requests / user_count:.2f} RPC requests, {transactions['begun'] / user_count:.2f} store transactions")
    print(f"target: within 2x the chain's limit -> {'met' if mined_seconds <= 2 * limit_seconds else 'NOT met'}")
    for line in lines:
        if line.startswith("trades in flight settled together"):
            print(f"  keeper: {line}")
    store.close()


if __name__ == "__main__":
    main()
