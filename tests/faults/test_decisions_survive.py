"""Decisions that survive a crash across bars, and a start that never overwrites a live
keeper's trade (issue 25): a start settles only the users whose lease it can take; a
dropped row follows its trade id's TradeExecuted when that appears after all; a decision
its keeper died on is acted on within its bar and expires, with the reason stored, after
it; and a keeper gives each user's lease back between cycles."""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest
from helpers_keeper import assert_store_matches_chain
from keeper_faults import KeeperDied

import keepers.engine.journal as journal_module
from keepers.persistence.tables import DROPPED, MINED, SENT


def test_a_start_while_another_keeper_has_stored_sent__leaves_its_trade_alone(run, monkeypatch):
    first, store, _ = run.start(keeper_id="first-keeper")
    seen: dict[str, list[str]] = {}

    def at_checkpoint(name: str) -> None:
        if name == "after_sent_stored":  # the second keeper starts right here
            second, second_store, lines = run.start(keeper_id="second-keeper")
            seen["second"] = lines
            second_store.close()
        if name == "after_broadcast":  # the first dies before it records the receipt
            raise KeeperDied

    monkeypatch.setattr(journal_module, "checkpoint", at_checkpoint)
    with pytest.raises(KeeperDied):
        first.run_once()
    (row,) = store.trades()
    assert row.status == SENT  # the second start left the held user's row alone
    assert not any("dropped" in line for line in seen["second"]), seen["second"]

    monkeypatch.setattr(journal_module, "checkpoint", lambda name: None)
    restarted, store_again, lines = run.start(keeper_id="first-keeper")
    (row,) = store_again.trades()
    assert row.status == MINED, lines  # the restart found the broadcast trade's event
    assert assert_store_matches_chain(store_again, run.system) == [row.trade_id]
    store.close()
    store_again.close()


def killed_at(run, checkpoint: str):
    """`ape run keeper --once` SIGKILLed at ``checkpoint``; the run's store, opened."""
    code, output = run.run_keeper("--once", env={"SENTINEL_CRASH_AT": checkpoint,
                                                 "SENTINEL_KEEPER_ID": "faults-keeper"})
    assert code == -signal.SIGKILL, output
    return run.open_store()


def test_a_dropped_row_whose_trade_id_executed_after_all_follows_the_chain(run):
    store = killed_at(run, "after_broadcast")  # the trade is on the chain, its row still says sent
    (row,) = store.trades()
    assert row.status == SENT
    # What a racing reconcile did before this fix: gave the row up while its transaction flew.
    store.update_trade(row.trade_id, status=DROPPED, revert_reason="the node does not know the transaction")
    _, store_again, lines = run.start(keeper_id="faults-keeper")
    (revisited,) = store_again.trades()
    assert revisited.status == MINED and revisited.tx_hash == row.tx_hash, lines
    assert any(f"{DROPPED} -> {MINED}" in line for line in lines), lines
    assert assert_store_matches_chain(store_again, run.system) == [row.trade_id]
    store.close()
    store_again.close()


def test_a_decision_its_keeper_died_on_expires_with_its_reason_once_the_next_bar_closed(run):
    store = killed_at(run, "after_risk_check")
    open_decision = next(s for s in store.unsettled_signals("bob") if s.action == "BUY")  # the one it died on
    run.system.next_bar()  # the keeper stays down for a whole bar
    keeper, store_after, _ = run.start(keeper_id="faults-keeper")
    (result,) = keeper.run_once()
    assert result.error is None, result.line()
    signals = {(s.strategy, s.bar_time): s for s in store_after.signals("bob")}
    expired = signals[(open_decision.strategy, open_decision.bar_time)]
    assert expired.acted and expired.outcome.startswith("expired: not acted on before the bar of"), expired.outcome
    assert any("expired" in event for event in result.events), result.events
    assert store_after.unsettled_signals("bob") == []  # every decision has its outcome
    assert all(s.outcome for s in store_after.signals("bob"))
    assert not [t for t in store_after.trades() if t.bar_time == open_decision.bar_time]  # never traded late
    assert store_after.leases() == []  # the keeper gave bob back after its cycle
    store.close()
    store_after.close()


def test_after_a_gap_the_missed_bars_are_filled_from_the_rounds_and_only_the_newest_is_decided(run):
    keeper, store, _ = run.start(keeper_id="faults-keeper")
    (first,) = keeper.run_once()
    assert first.error is None, first.line()
    decided_before = {s.bar_time for s in store.signals("bob")}
    for _ in range(3):  # the keeper is down for three bars; the market moves on
        run.system.next_bar()
    (after,) = keeper.run_once()
    assert after.error is None, after.line()
    bars = [bar.bar_time for bar in store.bars("BTC", 86_400)]  # the missed ones filled: no hole
    assert all(later - earlier == timedelta(days=1) for earlier, later in zip(bars, bars[1:])), bars[-6:]
    new_decisions = {s.bar_time for s in store.signals("bob")} - decided_before
    assert new_decisions == {bars[-2]}  # the newest closed bar only (the last is the chain's open one)
    skipped = [event for event in store.risk_events("bob") if event.rule == "bars_skipped"]
    assert skipped and "closed while no keeper ran" in skipped[0].reason
    store.close()
