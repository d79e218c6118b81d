"""Replay benchmark: wall time per bar for 3 users x 3 tokens when nothing trades,
next to the floor measured in the same run.

Run:  .venv/bin/python bench/replay.py [--bars 200]

Starts its own plain anvil (as `make run` does; ape-foundry's own anvil traces every
step and is several times slower), deploys the local market and system, funds three
users who each hold WETH, WBTC and LTC with the strategies of data/config/strategies.yaml,
then replays ``--bars`` bars of flat prices (every strategy decides each bar, none
trades) through the same code as `ape run simulate`, and measures:
- the floor per bar: one raw transaction (a zero-value transfer, mined) plus one
  Multicall3 read (the users' batch), the least a bar can cost;
- the replay per bar: the market driver's move plus three users' keeper cycles.

Targets: <= 100 ms per bar (issue 13: the 1,792-bar sample in about 3 minutes); <= 3x
the floor measured in the same run, on a quiet machine (issue 24).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from harness import ROOT, ape_on_private_anvil


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=200)
    args = parser.parse_args()
    with ape_on_private_anvil():
        measure(args.bars)


def measure(bars: int) -> None:
    from ape import chain
    from helpers_keeper import deploy_local_system, user_entry

    from keepers.engine.bars import bar_start
    from keepers.engine.scheduler import Scheduler
    from keepers.engine.startup import build_context
    from keepers.persistence.store import Store
    from keepers.replay.runner import MarketWalk, Replay, ReplayWindow, chain_offset

    folder = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    users = [user_entry(f"user{i}", 3 + i, ["WETH", "WBTC", "LTC"]) for i in range(3)]
    system = deploy_local_system(folder, users, f"sqlite:///{folder / 'store.db'}",
                                 strategies_file=str(ROOT / "data" / "config" / "strategies.yaml"))
    config = system.config()
    store = Store.open(config.settings.resolved_store_url())
    context = build_context(config, system.spec, system.record, store, local_chain=True, users=config.users)
    scheduler = Scheduler(context, config.users, report=lambda line: None)
    first = bar_start(chain.blocks.head.timestamp, 86_400) + pd.Timedelta(days=1)
    index = pd.date_range(first, periods=bars + 1, freq="1D", name="timestamp")
    prices = {"ETH": system.prices["WETH"], "BTC": system.prices["WBTC"], "LTC": system.prices["LTC"]}
    window = ReplayWindow(closes=pd.DataFrame(prices, index=index), interval_seconds=86_400, source="flat")
    replay = Replay(scheduler=scheduler, market=MarketWalk(
        driver=system.driver, spec=system.spec, window=window, token_series=dict(config.settings.price_series),
        offset_seconds=chain_offset(index[0], 86_400, chain.blocks.head.timestamp)))
    stamps: list[float] = []
    outcomes: list[tuple[int, int]] = []

    def on_bar(done, stamp, results):
        stamps.append(time.perf_counter())
        outcomes.append((sum(r.trades_ok + r.trades_failed for r in results), sum(bool(r.error) for r in results)))

    stamps.append(time.perf_counter())
    replay.run(on_bar)
    per_bar = [b - a for a, b in zip(stamps[1:-1], stamps[2:])]  # the first bar compiles the indicators
    assert all(outcome == (0, 0) for outcome in outcomes), outcomes

    provider = chain.provider
    sender = str(system.driver.sender)
    batch = next(iter(context.client._batches.values())).batch
    floor = []
    for _ in range(bars):
        start = time.perf_counter()
        tx_hash = provider.make_request("eth_sendTransaction", [{"from": sender, "to": sender, "value": "0x0"}])
        while provider.make_request("eth_getTransactionReceipt", [tx_hash]) is None:
            time.sleep(0.001)
        batch()
        floor.append(time.perf_counter() - start)

    bar_ms, floor_ms = statistics.median(per_bar) * 1000, statistics.median(floor) * 1000
    print(f"floor per bar: one raw tx + one Multicall3 read   {floor_ms:8.2f} ms")
    print(f"replay per bar: 3 users x 3 tokens, no trade      {bar_ms:8.2f} ms   {bar_ms / floor_ms:5.1f}x floor")
    print(f"the 1,792-bar sample at this rate: {1792 * bar_ms / 1000 / 60:.1f} min")
    print(f"target: <= 100 ms per bar -> {'met' if bar_ms <= 100 else 'NOT met'}")
    print(f"target: <= 3x the floor per bar (on a quiet machine) -> {'met' if bar_ms <= 3 * floor_ms else 'NOT met'}")


if __name__ == "__main__":
    main()
