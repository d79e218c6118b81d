"""The store unavailable right after a trade filled on-chain (its SQLite file locked by
another process; its PostgreSQL server stopped): the keeper cannot record the fill, and
the next start recovers it from the chain."""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from ape import chain
from keeper_faults import (
    SqliteWriteLock,
    assert_store_matches_chain,
    begin_run,
    deploy_fault_system,
    sent_and_broadcast,
)
from servers import PostgresServer

from keepers.store import MINED, SENT


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    return deploy_fault_system(tmp_path_factory.mktemp("store_outage"))


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
    """The next start finds the fill on the chain: one mined row, store equals chain."""
    scheduler, store, lines = run.start()
    (final,) = store.trades()
    assert final.trade_id == row.trade_id and final.status == MINED, lines
    assert assert_store_matches_chain(store, run.system) == [row.trade_id]
    scheduler.run_once()
    assert len(store.trades()) == 1  # the bar stays decided: nothing sent again
    store.close()


def test_sqlite_locked_by_another_process_after_a_fill__next_start_recovers_it(system, tmp_path):
    run = begin_run(system, tmp_path)
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
