"""Faults on the chain side, with the keeper in this process: the keeper account's nonce
moved by an outside transaction, a reorg that drops a mined trade, and the causes that
must stop trading (stale or reverting feed, paused Executor, revoked keeper, a user who
opted out) and let it resume once they clear."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ape import accounts, chain, project
from helpers_keeper import assert_store_matches_chain
from keeper_faults import BOB, DAY, GUARDIAN, KEEPER, governed

from keepers.engine.bars import bar_start
from keepers.persistence.tables import DROPPED, MINED


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


def _executor(system):
    return project.Executor.at(system.record.address_of("Executor"))


def _vault(system):
    return project.Vault.at(system.record.address_of("Vault"))


class Cause:
    """A reason the keeper must not trade: the rule it is recorded under, how to bring it
    about and how it clears (each a function of the system)."""

    def __init__(self, rule: str, apply, clear, *, crosses_a_bar: bool = False) -> None:
        self.rule, self.apply, self.clear = rule, apply, clear
        # A cause that lasts longer than a bar (a feed stale past the decided bar's successor):
        # the old bar is not decided late; the newest closed bar is (its close filled from the
        # feed's rounds), whatever it says.
        self.crosses_a_bar = crosses_a_bar


def _stale(system):
    chain.mine(deltatime=system.spec.token("WBTC").max_age_seconds + 1)


class RevertingFeed(Cause):
    """The WBTC feed's code swapped for MockFaultyFeed's set to revert; then swapped back
    (MockFaultyFeed keeps its fault in slot 0, the only slot restored)."""

    def __init__(self) -> None:
        super().__init__("oracle_invalid", self._break, self._mend)
        self.saved: tuple = ()

    def _break(self, system) -> None:
        feed = system.record.feeds["WBTC"]
        self.saved = (chain.provider.get_code(feed), chain.provider.web3.eth.get_storage_at(feed, 0))
        chain.provider.set_code(feed, project.MockFaultyFeed.contract_type.runtime_bytecode.bytecode)
        chain.provider.set_storage(feed, 0, 1)  # Fault.Reverts

    def _mend(self, system) -> None:
        feed = system.record.feeds["WBTC"]
        code, slot = self.saved
        chain.provider.set_code(feed, code)
        chain.provider.set_storage(feed, 0, slot)


CAUSES = {
    "stale_feed": Cause("oracle_stale", _stale, lambda s: s.move({}), crosses_a_bar=True),
    "reverting_feed": RevertingFeed(),
    "paused_executor": Cause(
        "trading_paused", lambda s: _executor(s).pause(sender=accounts.test_accounts[GUARDIAN]),
        lambda s: governed(s, _executor(s), "unpause")),
    "paused_vault": Cause(
        "trading_paused", lambda s: _vault(s).pause(sender=accounts.test_accounts[GUARDIAN]),
        lambda s: governed(s, _vault(s), "unpause")),
    "revoked_keeper": Cause(
        "keeper_revoked",
        lambda s: _executor(s).removeKeeper(accounts.test_accounts[KEEPER], sender=accounts.test_accounts[GUARDIAN]),
        lambda s: governed(s, _executor(s), "addKeeper", accounts.test_accounts[KEEPER].address)),
    "user_opted_out": Cause(
        "user_opted_out", lambda s: _executor(s).setUserLimits(False, 100, sender=accounts.test_accounts[BOB]),
        lambda s: _executor(s).setUserLimits(True, 100, sender=accounts.test_accounts[BOB])),
}


@pytest.mark.parametrize("cause", list(CAUSES))
def test_a_cause_that_forbids_trading__no_trade_the_reason_recorded_and_trading_resumes_when_it_clears(run, cause):
    scheduler, store, _ = run.start()  # started healthy: the start-up checks pass
    CAUSES[cause].apply(run.system)
    (stopped,) = scheduler.run_once()
    assert stopped.trades_ok == 0 and stopped.error is None, stopped.line()
    assert store.trades() == [] and assert_store_matches_chain(store, run.system) == []
    assert [event.rule for event in store.risk_events("bob")] == [CAUSES[cause].rule]
    CAUSES[cause].clear(run.system)
    (resumed,) = scheduler.run_once()
    if CAUSES[cause].crosses_a_bar:
        assert resumed.error is None and resumed.signals == 1, resumed.line()
        (decision,) = store.signals("bob")
        newest_closed = bar_start(chain.blocks.head.timestamp, DAY) - timedelta(days=1)
        assert decision.bar_time == newest_closed and decision.acted and decision.outcome, decision.outcome
        assert assert_store_matches_chain(store, run.system) == [t.trade_id for t in store.trades()]
    else:  # the same decision, now that it may trade
        assert resumed.trades_ok == 1, resumed.line()
        assert len(assert_store_matches_chain(store, run.system)) == 1
    store.close()
