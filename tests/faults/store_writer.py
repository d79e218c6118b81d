"""A store writer for the durability test, run as its own process:

    python tests/faults/store_writer.py SQLITE_URL

It imports and opens (migrates) the store once, then for each line read from stdin (a
seed) forks one writer and reports ``started <pid>``, then ``ended <pid> <wait status>`` when
that writer dies (the test kills it with SIGKILL). Forking keeps each restart cheap (a
cold import of the store costs over a second here) while every writer is a real
process with its own SQLite connections.

A writer makes its own connections (with the keeper's pragmas: WAL, synchronous=FULL)
and writes without pause, through the keeper's own store methods: trades in write-ahead order (intent -> sent -> mined, or
-> failed / dropped), signals, price bars, risk trades with their locks, risk events,
peaks, cycles, heartbeats and leases. After each trade step commits it writes
``<trade id> <status>`` to stdout in one ``write`` (atomic on a pipe), so the test
knows what the store must hold at least.
"""

from __future__ import annotations

import itertools
import os
import random
import sys
from datetime import UTC, datetime, timedelta

from keepers.base.clock import now_utc
from keepers.persistence.store import Store
from keepers.persistence.tables import (
    DROPPED,
    FAILED,
    INTENT,
    MINED,
    SENT,
    CycleRow,
    LockRow,
    RiskTradeRow,
    SignalRow,
    TradeRow,
)

USER_ADDRESS = "0x" + "ab" * 20
TOKEN_IN, TOKEN_OUT = "0x" + "01" * 20, "0x" + "02" * 20
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def main(url: str) -> None:
    """Opens (and migrates) the store, then forks one writer per seed read from stdin."""
    store = Store.open(url)
    for line in sys.stdin:
        store.engine.dispose()  # no connection crosses the fork: each writer makes its own
        pid = os.fork()
        if pid == 0:
            try:
                write_forever(store, int(line))
            finally:  # a writer that fails must not go on as a second parent
                os._exit(1)
        print(f"started {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"ended {pid} {status}", flush=True)


def write_forever(store: Store, seed: int) -> None:
    """Writes trades and the other tables until killed."""
    rng = random.Random(seed)
    keeper_id = f"writer-{seed}"
    for number in itertools.count():
        trade_id = f"0x{seed:016x}{number:048x}"
        bar_time = EPOCH + timedelta(days=number)
        now = now_utc()
        store.add_trade_intent(TradeRow(
            trade_id=trade_id, user_id="alice", user_address=USER_ADDRESS, keeper_id=keeper_id, chain_id=31337,
            asset="WETH", strategy="bollinger", side="BUY", bar_time=bar_time, token_in=TOKEN_IN,
            token_out=TOKEN_OUT, amount_in=10**21 + number, min_amount_out=3 * 10**17, oracle_floor=3 * 10**17,
            pool_amount_out=31 * 10**16, status=INTENT, replaced_tx_hashes=[], dry_run=False, created_at=now,
            updated_at=now,
        ))
        _report(trade_id, INTENT)
        store.record_decisions([SignalRow(
            user_id=f"u{seed}", asset="WETH", strategy="bollinger", bar_time=bar_time, action="BUY",
            confidence=rng.random(), reason="close under the lower band", indicators={"close": 3000.0 + number},
            created_at=now)])
        store.record_prices([("ETH", 86_400, bar_time, 3000.0 + rng.random(), "oracle", number + 1)])
        store.acquire_lease("alice", keeper_id, now, now + timedelta(seconds=300))
        store.beat(keeper_id, interval_seconds=60, pid=os.getpid(), host="writer", started_at=now)
        outcome = rng.random()
        if outcome < 0.1:
            store.update_trade(trade_id, status=FAILED, revert_reason="ExecutorStalePrice")
            _report(trade_id, FAILED)
            continue
        store.update_trade(trade_id, status=SENT, tx_hash=f"0x{number:064x}", nonce=number)
        _report(trade_id, SENT)
        store.add_risk_event("alice", "WETH", "cooldown", "cooldown of 1 day", now)
        if outcome < 0.2:
            store.update_trade(trade_id, status=DROPPED, revert_reason="the node does not know the transaction")
            _report(trade_id, DROPPED)
            continue
        store.update_trade(
            trade_id, status=MINED, amount_out=3 * 10**17 + number, price_in=10**8, price_out=3 * 10**11,
            block_number=number + 1, gas_used=270_000, gas_price=10**9, tx_hash=f"0x{number:064x}")
        _report(trade_id, MINED)
        store.add_risk_trade(
            RiskTradeRow(user_id="alice", timestamp=now, asset="WETH", pnl_quote=rng.uniform(-5, 5), success=True,
                         trade_id=trade_id),
            [LockRow(user_id="alice", rule="cooldown", asset="WETH", until=now + timedelta(days=1),
                     reason="cooldown of 1 day", created_at=now)])
        store.raise_peak("alice", 10_000 + rng.random(), now)
        store.add_cycle(CycleRow(
            keeper_id=keeper_id, user_id="alice", started_at=now, block_time=now, duration_seconds=0.01,
            rpc_calls=1, signals=1, trades_ok=1, trades_failed=0, blocks=0, memory_mb=100.0,
            vault_value_quote=10_000.0, position_value_quote=1_000.0, error=None))


def _report(trade_id: str, status: str) -> None:
    os.write(1, f"{trade_id} {status}\n".encode())


if __name__ == "__main__":
    main(sys.argv[1])
