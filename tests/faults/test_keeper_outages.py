"""Outages, with the keeper as a real process. The node unreachable for a while (a proxy
between the keeper and anvil drops or stalls every connection), starting right after the
keeper broadcast a trade whose answer it never got: its cycles fail and back off without
deciding on old data, then it resumes by itself and reconciles the trade from the chain,
not re-sending it. The store unavailable right after a trade filled on-chain (its SQLite
file locked by another process; its PostgreSQL server stopped): the keeper cannot record
the fill, and the next start recovers it from the chain."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from ape import accounts, chain
from helpers_keeper import assert_store_matches_chain
from keeper_faults import (
    KEEPER,
    RpcProxy,
    SqliteWriteLock,
    begin_run,
    sent_and_broadcast,
)
from servers import PostgresServer

from keepers.persistence.tables import MINED, SENT

OUTAGE_SECONDS = 8  # longer than the retries of one read (0.25 + 0.5 + 1 + 2 s)


@pytest.mark.parametrize("mode", ["drop", pytest.param("stall", marks=pytest.mark.long)])
def test_node_unreachable_after_a_broadcast__keeper_backs_off_resumes_and_reconciles(run, mode):
    proxy = RpcProxy(chain.provider.uri)
    proxy.outage_after(b"eth_sendRawTransaction", OUTAGE_SECONDS, mode)
    nonce = accounts.test_accounts[KEEPER].nonce
    process = run.keeper("--interval", "1", env={"APE_FOUNDRY_HOST": proxy.url})
    seen, deadline = "", time.monotonic() + 120
    try:
        while "-> mined" not in seen:  # the cycle after the outage reconciles the trade
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, seen
            seen += line
    finally:
        process.send_signal(signal.SIGTERM)
        seen += process.communicate(timeout=120)[0]
        proxy.close()
    assert process.returncode == 0 and "Traceback" not in seen, seen

    (start, end) = proxy.outages[0]
    store = run.open_store()
    (row,) = store.trades()
    assert row.status == MINED and row.nonce == nonce
    assert accounts.test_accounts[KEEPER].nonce == nonce + 1  # sent once, never again
    assert assert_store_matches_chain(store, run.system) == [row.trade_id]  # settled by the keeper itself
    cycles = store.cycles("bob")
    failed = [c for c in cycles if c.error]
    assert failed and all(c.started_at.timestamp() < end for c in failed), [(c.started_at, c.error) for c in cycles]
    # Nothing was decided from the outage on: the one signal and trade came before it.
    assert [s.created_at.timestamp() < start for s in store.signals()] == [True]
    assert row.created_at.timestamp() < start
    # Resumed by itself: a cycle that ended after the outage went through (retries may
    # have carried it over the outage's end).
    assert any(c.error is None and c.started_at.timestamp() + c.duration_seconds > end for c in cycles)
    store.close()


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


def fill_while(run, make_unavailable):
    """Starts a keeper with anvil holding blocks back; once its trade is sent, makes the
    store unavailable, mines the fill and returns the keeper process."""
    provider = chain.provider
    provider.make_request("evm_setAutomine", [False])
    try:
        process = run.keeper("--once")
        store = run.open_store()
        row = sent_and_broadcast(store, process)
        store.close()
        make_unavailable()
        provider.make_request("evm_mine", [])
    finally:
        provider.make_request("evm_setAutomine", [True])
    return process, row


def recovered_on_next_start(run, row):
    """The next start finds the fill on the chain: one mined row, store equals chain. A
    start settles only the users it can lease, so it comes once the stopped keeper's
    lease has expired (a supervisor restarting it under its own name would not wait)."""
    leases = run.open_store()
    for lease in leases.leases():
        time.sleep(max(0.0, lease.expires_at.timestamp() - time.time()) + 0.2)
    leases.close()
    scheduler, store, lines = run.start()
    (final,) = store.trades()
    assert final.trade_id == row.trade_id and final.status == MINED, lines
    assert assert_store_matches_chain(store, run.system) == [row.trade_id]
    scheduler.run_once()
    assert len(store.trades()) == 1  # the bar stays decided: nothing sent again
    store.close()


def test_sqlite_locked_by_another_process_after_a_fill__next_start_recovers_it(run, tmp_path):
    holder = []
    process, row = fill_while(run, lambda: holder.append(SqliteWriteLock(str(tmp_path / "sentinel.db"))))
    time.sleep(3)  # the keeper has the receipt now and waits for the lock to store it
    store = run.open_store()
    assert process.poll() is None and store.trade(row.trade_id).status == SENT
    store.close()
    process.send_signal(signal.SIGKILL)  # given up on (a supervisor's timeout): the fill is not stored
    process.communicate(timeout=60)
    holder[0].release()
    recovered_on_next_start(run, row)


def test_postgresql_stopped_after_a_fill__next_start_recovers_it(system, tmp_path, postgres):
    run = begin_run(system, tmp_path, postgres.create_database(f"t_{uuid.uuid4().hex[:12]}"))
    process, row = fill_while(run, postgres.halt)
    output = process.communicate(timeout=120)[0]
    postgres.resume()
    # The cycle fails on one line and the keeper ends as usual, no traceback.
    assert process.returncode == 0 and "Traceback" not in output, output
    assert "bob: store unavailable (connection failed" in output, output
    recovered_on_next_start(run, row)
