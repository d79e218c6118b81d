"""The node unreachable for a while (a proxy between the keeper process and anvil drops
or stalls every connection), starting right after the keeper broadcast a trade whose
answer it never got: the keeper's cycles fail and back off without deciding on old
data, then it resumes by itself and reconciles the trade from the chain, not re-sending it."""

from __future__ import annotations

import signal
import time

import pytest
from ape import accounts, chain
from keeper_faults import KEEPER, RpcProxy, assert_store_matches_chain, begin_run, deploy_fault_system

from keepers.store import MINED

OUTAGE_SECONDS = 8  # longer than the retries of one read (0.25 + 0.5 + 1 + 2 s)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    return deploy_fault_system(tmp_path_factory.mktemp("outage"))


@pytest.mark.parametrize("mode", ["drop", pytest.param("stall", marks=pytest.mark.long)])
def test_node_unreachable_after_a_broadcast__keeper_backs_off_resumes_and_reconciles(system, tmp_path, mode):
    run = begin_run(system, tmp_path)
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
    assert assert_store_matches_chain(store, system) == [row.trade_id]  # settled by the keeper itself
    cycles = store.cycles("bob")
    failed = [c for c in cycles if c.error]
    assert failed and all(c.started_at.timestamp() < end for c in failed), [(c.started_at, c.error) for c in cycles]
    # Nothing was decided from the outage on: the one signal and trade came before it.
    assert [s.created_at.timestamp() < start for s in store.signals()] == [True]
    assert row.created_at.timestamp() < start
    assert any(c.started_at.timestamp() > end and c.error is None for c in cycles)  # resumed by itself
    store.close()
