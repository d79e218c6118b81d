"""A real keeper process SIGKILLed at each checkpoint of a cycle, then started again:
nothing executes twice, no trade record is lost, the store matches the chain; and a
keeper started while a dead keeper's lease is unexpired waits for it, then takes over."""

from __future__ import annotations

import signal
import time

import pytest
from helpers_keeper import assert_store_matches_chain

from keepers.persistence.tables import MINED, SENT

RESTARTED = {"keeper_id": "faults-keeper"}  # a restarted service keeps its name, so its own lease
# What the next start makes of the trade the killed keeper was deciding, per checkpoint:
# every decision ends in one mined trade.
AFTER_RESTART = {
    "after_price_read": MINED,  # nothing was decided: the restart decides and trades
    "after_risk_check": MINED,  # decided, not acted on: the restart acts on the stored decision
    "after_intent": MINED,  # never signed: reconciled as dropped, then sent under the same trade id
    "after_sent_stored": MINED,  # signed, never broadcast: the same
    "after_broadcast": MINED,  # found by its TradeExecuted event
    "after_mined": MINED,
}


# Each crash is a keeper process (~15 s here): `make test` kills at the checkpoints no
# other test covers (after_broadcast is the lease test's crash, and tests/keepers covers
# after_sent_stored); every checkpoint runs under -m long.
IN_SHORT_RUN = ("after_risk_check", "after_intent", "after_mined")


@pytest.mark.parametrize("crash_at", [
    name if name in IN_SHORT_RUN else pytest.param(name, marks=pytest.mark.long) for name in AFTER_RESTART])
def test_keeper_killed_at_a_checkpoint__next_start_trades_nothing_twice_and_loses_nothing(run, crash_at):
    code, output = run.run_keeper("--once", env={"SENTINEL_CRASH_AT": crash_at, "SENTINEL_KEEPER_ID": "faults-keeper"})
    assert code == -signal.SIGKILL, output

    scheduler, store, _ = run.start(**RESTARTED)
    assert_store_matches_chain(store, run.system)  # the start's reconcile alone settled it
    (result,) = scheduler.run_once()
    assert result.error is None, result.line()
    ids = assert_store_matches_chain(store, run.system)
    statuses = [row.status for row in store.trades()]
    expected = AFTER_RESTART[crash_at]
    assert statuses == [expected]
    assert len(ids) == 1
    scheduler.run_once()  # and again: the bar is decided, nothing more is sent
    assert assert_store_matches_chain(store, run.system) == ids
    store.close()


def test_keeper_started_while_a_dead_keepers_lease_holds__waits_then_takes_over(run):
    code, output = run.run_keeper("--once", env={"SENTINEL_CRASH_AT": "after_broadcast"})
    assert code == -signal.SIGKILL, output
    scheduler, store, lines = run.start(keeper_id="second-keeper")
    (row,) = store.trades()
    assert row.status == SENT  # the user is held: only its lease's holder (or its successor) settles its trades
    (lease,) = store.leases()
    assert lease.owner != "second-keeper"
    assert scheduler.run_once() == [] and "bob: another keeper holds this user's lease; skipped" in lines
    time.sleep(max(0.0, lease.expires_at.timestamp() - time.time()) + 0.2)
    (result,) = scheduler.run_once()
    assert result.error is None, result.line()
    assert f"reconciled {row.trade_id[:10]} -> {MINED}" in result.events  # the fill, found under the lease
    assert store.leases() == []  # given back after the cycle
    assert result.signals == 0 and len(store.trades()) == 1  # the dead keeper's bar stays decided
    assert assert_store_matches_chain(store, run.system) == [row.trade_id]
    store.close()
