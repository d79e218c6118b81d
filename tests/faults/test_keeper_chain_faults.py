"""Faults on the chain side, with the keeper in this process: the keeper account's nonce
moved by an outside transaction, and a reorg that drops a mined trade."""

from __future__ import annotations

import pytest
from ape import accounts, chain
from keeper_faults import KEEPER, assert_store_matches_chain, begin_run, deploy_fault_system

from keepers.store import DROPPED, MINED


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    return deploy_fault_system(tmp_path_factory.mktemp("chain_faults"))


@pytest.fixture
def run(system, tmp_path):
    return begin_run(system, tmp_path)


def test_nonce_moved_by_an_outside_transaction__resynced_once_and_the_trade_goes_through(run):
    scheduler, store, _ = run.start()
    (bought,) = scheduler.run_once()  # the keeper now counts its next nonce itself
    assert bought.trades_ok == 1, bought.line()
    keeper = accounts.test_accounts[KEEPER]
    keeper.transfer(keeper, 0)  # the same account, from outside the keeper: the nonce moves on
    run.system.move({"WBTC": 1.06})
    scheduler.run_once()  # the rally is read into the current bar
    run.system.next_bar()
    (sold,) = scheduler.run_once()  # that bar closed 6% up: sell, at a nonce already used
    assert sold.trades_ok == 1 and sold.error is None, sold.line()
    assert [row.status for row in store.trades()] == [MINED, MINED]
    assert store.trades()[1].nonce == keeper.nonce - 1  # signed again at the chain's nonce
    assert len(assert_store_matches_chain(store, run.system)) == 2
    store.close()


def test_reorg_drops_a_mined_trade__next_start_records_it_dropped_not_mined(run):
    scheduler, store, _ = run.start()
    before = chain.snapshot()
    (result,) = scheduler.run_once()
    assert result.trades_ok == 1 and store.trades()[0].status == MINED, result.line()
    chain.restore(before)  # the block with the trade is gone, as after a reorg
    store.close()

    restarted, store, lines = run.start()
    (row,) = store.trades()
    assert row.status == DROPPED and "reorg" in row.revert_reason, lines
    assert assert_store_matches_chain(store, run.system) == []
    restarted.run_once()  # the decision was made once; it is not taken again
    assert len(store.trades()) == 1 and assert_store_matches_chain(store, run.system) == []
    store.close()
