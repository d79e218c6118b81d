"""The keeper's side of the protective exits on a real anvil: a triggered stop-loss or
trailing stop is executed first in the cycle, through the journal, sells the user's whole
balance, books every sleeve of the token and counts as a trade for the risk rules; the
exit is spent until the next start; a BUY where the stop-loss holds is stopped before
the Executor refuses it; and an exit another account executed while the keeper was away
is booked from the chain's log."""

from __future__ import annotations

import pytest
from ape import accounts, chain, project
from helpers_keeper import assert_store_matches_chain, backfill_dip, balances, deploy_local_system, start, user_entry

from keepers.chain.trades import exit_result
from keepers.persistence.tables import MINED
from keepers.views.report import user_report
from strategies.engine import EXIT_PROTECTION
from strategies.exits import EXIT_STRATEGY

USD = 10**18
ALICE = 3
OUTSIDER = 6  # no keeper: anyone on the network


def protect(system, *, stop_loss=0.0, trailing_bps=0, bounty_bps=0, grace=0):
    """Alice sets her WETH protection from her own wallet (prices in USD)."""
    executor = project.Executor.at(system.record.address_of("Executor"))
    executor.setProtection(system.record.tokens["WETH"], int(stop_loss * USD), 0, trailing_bps, bounty_bps, grace,
                           sender=accounts.test_accounts[ALICE])
    return executor


def exit_rows(store):
    return [row for row in store.trades() if row.strategy == EXIT_STRATEGY]


@pytest.fixture
def keeper(tmp_path):
    """Alice (WETH) on a fresh local system, a keeper in this process, a dip as the last bar."""
    system = deploy_local_system(tmp_path, [user_entry("alice", ALICE, ["WETH"])], "sqlite:///" + str(tmp_path / "s.db"))
    scheduler, store, lines = start(system)
    backfill_dip(system, store, series=("ETH",))
    yield system, scheduler, store, lines
    store.close()


@pytest.fixture
def bought(keeper):
    """The same after alice's first cycle bought WETH on the dip."""
    _, scheduler, _, lines = keeper
    assert scheduler.run_once()[0].trades_ok == 1, lines  # a Bollinger BUY of WETH
    return keeper


def test_a_stop_loss_sells_the_whole_balance_first_books_every_sleeve_and_is_spent(bought):
    system, scheduler, store, lines = bought
    protect(system, stop_loss=system.prices["WETH"] * 0.97)
    system.move({"WETH": 0.95})

    (cycle,) = scheduler.run_once()
    assert cycle.error is None and cycle.trades_ok == 1, lines
    (row,) = exit_rows(store)
    assert (row.status, row.side, row.exit_trigger, row.bounty) == (MINED, "SELL", "stop_loss", 0)
    assert balances(system, ALICE)["WETH"] == 0 and row.amount_in > 0
    assert store.positions("alice")[0].tokens == 0  # the strategy's sleeve sold out
    assert "WETH stop_loss exit at" in cycle.events[0]
    assert store.risk_state("alice").trades[-1].trade_id == row.trade_id  # a trade for the risk rules
    mark = store.user_rows("alice", *system.config().user("alice").risk.memory(), since=row.bar_time).exit_marks[0]
    assert mark.started_at is None  # spent
    report = user_report(store, "alice", system.spec.decimals, "USDC", 86_400).summary()
    assert (report["round_trips_closed"], report["round_trips_open"]) == (1, 0)  # the exit closed the BUY's trip
    assert report["realised_pnl_quote"] < 0  # sold 5% under the price it bought at

    executor = project.Executor.at(system.record.address_of("Executor"))
    assert executor.protection(accounts.test_accounts[ALICE], system.record.tokens["WETH"]).startedAt == 0
    (again,) = scheduler.run_once()  # the stop still holds; the exit is spent and nothing is held
    assert again.trades_ok == 0 and again.error is None and len(exit_rows(store)) == 1, lines
    assert_store_matches_chain(store, system)


def test_a_trailing_stop_names_the_high_water_round_the_keeper_saw(bought):
    system, scheduler, store, lines = bought
    protect(system, trailing_bps=1_000)
    system.move({"WETH": 1.05})
    assert scheduler.run_once()[0].trades_ok == 0, lines  # a new high: the mark follows it
    high_round = project.MockFeed.at(system.record.feeds["WETH"]).latestRoundData()[0]
    system.move({"WETH": 0.89})  # 11% below the high
    (cycle,) = scheduler.run_once()
    assert cycle.trades_ok == 1, lines
    (row,) = exit_rows(store)
    assert row.exit_trigger == "trailing_stop"
    executor = project.Executor.at(system.record.address_of("Executor"))
    logged = exit_result(executor, chain.provider.get_receipt(row.tx_hash), accounts.test_accounts[ALICE].address,
                         system.record.tokens["WETH"])
    assert (logged.trigger.label, logged.high_round_id) == ("trailing_stop", high_round)
    assert_store_matches_chain(store, system)


def test_an_exit_another_account_executed_after_the_grace_is_booked_from_the_chain(bought):
    system, scheduler, store, lines = bought
    executor = protect(system, stop_loss=system.prices["WETH"] * 0.97, bounty_bps=100, grace=3_600)
    assert scheduler.run_once()[0].trades_ok == 0  # the keeper follows the protection, nothing holds
    system.move({"WETH": 0.95})
    outsider = accounts.test_accounts[OUTSIDER]
    arguments = (accounts.test_accounts[ALICE], system.record.tokens["WETH"], 0, 0,
                 system.record.address_of("UniswapV2Router02"))
    executor.executeExit(*arguments, chain.blocks.head.timestamp + 600, sender=outsider)  # arms it
    system.move({}, at_time=chain.blocks.head.timestamp + 3_601)  # after the grace, the feed fresh
    executor.executeExit(*arguments, chain.blocks.head.timestamp + 600, sender=outsider)

    (cycle,) = scheduler.run_once()
    assert cycle.error is None, lines
    (row,) = exit_rows(store)
    assert row.status == MINED and row.keeper_id == f"outside:{outsider.address}" and row.bounty > 0
    assert "exit by outside:" in " ".join(cycle.events)
    assert store.positions("alice")[0].tokens == 0
    vault = project.Vault.at(system.record.address_of("Vault"))
    assert vault.balanceOf(outsider, system.record.tokens["USDC"]) == row.bounty  # paid in the vault
    assert scheduler.run_once()[0].error is None and len(exit_rows(store)) == 1  # booked once
    assert_store_matches_chain(store, system)


def test_a_buy_where_the_stop_loss_holds_is_stopped_with_its_rule_before_the_executor_refuses_it(keeper):
    system, scheduler, store, lines = keeper
    protect(system, stop_loss=system.prices["WETH"] * 1.01)  # holds at today's price: nothing held to sell
    (cycle,) = scheduler.run_once()
    assert cycle.trades_ok == 0 and cycle.blocks_by_rule == {EXIT_PROTECTION: 1}, lines
    assert "ExecutorBuyTriggersExit" in store.risk_events("alice")[-1].reason
    assert store.trades() == []  # nothing sent that would revert
