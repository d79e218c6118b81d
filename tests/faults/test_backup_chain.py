"""`ape run keeper backup` while a real keeper process is in the middle of a trade on
anvil, then `ape run keeper restore` and `ape run keeper --once` on the restored store:
the trade the backup caught in flight is reconciled with the chain, never sent twice."""

from __future__ import annotations

import sqlite3
import time

from ape import chain
from helpers_keeper import calm_then_dip, deploy_local_system, trade_events, user_entry

from keepers.engine.bars import backfill_from_file
from keepers.persistence.store import Store
from keepers.persistence.tables import MINED, SENT

USERS = [user_entry("bob", 4, ["WBTC"])]


def wait_for_status(store: Store, status: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while [row.status for row in store.trades()] != [status]:
        assert time.monotonic() < deadline, [row.status for row in store.trades()]
        time.sleep(0.2)


def test_a_backup_taken_mid_trade_restores_to_a_store_the_keeper_reconciles(tmp_path):
    url = f"sqlite:///{tmp_path / 'state' / 'sentinel.db'}"
    # A long transaction timeout: the pending trade is waited for, not replaced, while we look.
    system = deploy_local_system(tmp_path, USERS, url, tx_timeout_seconds=600)
    store = Store.open(url)
    history = system.write_history({"BTC": calm_then_dip(system.prices["WBTC"])})
    backfill_from_file(store, history, ["BTC"], 86_400)
    backup = tmp_path / "backups" / "sentinel-backup.db"
    provider = chain.provider
    provider.make_request("evm_setAutomine", [False])  # bob's BUY waits in the mempool: the row stays "sent"
    try:
        keeper = system.keeper_process("--once")
        wait_for_status(store, SENT)
        code, output = system.run_keeper("backup", "--to", str(backup))
        assert code == 0 and f"to {backup} (schema 0009, 1 trades)" in output, output
        code, output = system.run_keeper("restore", "--from", str(backup))
        assert code == 1 and "Traceback" not in output, output
        assert "Error: store_url: keeper " in output and "stop the keepers first" in output, output
        provider.make_request("evm_mine", [])
        assert keeper.wait(timeout=180) == 0, keeper.stdout.read()
    finally:
        provider.make_request("evm_setAutomine", [True])
    (mined,) = store.trades()
    assert mined.status == MINED and trade_events(system.record) == [mined.trade_id]
    with sqlite3.connect(backup) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("SELECT trade_id, status, tx_hash FROM trades").fetchall() == [
            (mined.trade_id, SENT, mined.tx_hash)]
    store.close()

    code, output = system.run_keeper("restore", "--from", str(backup))  # the keeper has stopped
    assert code == 0 and f"Restored {backup}" in output, output
    restored = Store.open(url)
    assert [row.status for row in restored.trades()] == [SENT]
    code, output = system.run_keeper("--once")
    assert code == 0 and f"reconciled trade {mined.trade_id[:12]}" in output, output
    (row,) = restored.trades()
    assert (row.status, row.amount_out, row.block_number) == (MINED, mined.amount_out, mined.block_number)
    assert trade_events(system.record) == [row.trade_id]  # reconciled from the chain, not sent again
    restored.close()
