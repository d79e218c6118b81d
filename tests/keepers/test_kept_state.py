"""A user's state kept in memory between cycles (issue 24, incremental state): the store's
triggers count every write to a user's state, whoever makes it, and a kept state is
reused only while that count stands still. On SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keepers.engine.kept_state import KeptUserState
from keepers.engine.risk import RiskManager
from keepers.persistence.store import SignalOutcome, Store
from keepers.persistence.tables import (
    GLOBAL_USER,
    INTENT,
    MINED,
    PENDING,
    ControlActionRow,
    ExitMarkRow,
    LockRow,
    PositionRow,
    RiskTradeRow,
    SignalRow,
    TradeRow,
)
from keepers.settings.keeper import RiskProfile
from strategies.risk import TradeRecord

NOW = datetime(2024, 3, 1, tzinfo=UTC)
SPAN, NEWEST = timedelta(days=1), 3


def trade(user_id: str, number: int, status: str = MINED) -> TradeRow:
    return TradeRow(trade_id=f"0x{number:064x}", user_id=user_id, user_address="0x" + "33" * 20, keeper_id="k",
                    chain_id=31337, asset="WETH", strategy="s", side="BUY", bar_time=NOW, token_in="0x" + "11" * 20,
                    token_out="0x" + "22" * 20, amount_in=10, amount_out=1, status=status, created_at=NOW,
                    updated_at=NOW, dry_run=False, replaced_tx_hashes=[])


def test_every_write_to_a_users_state_moves_the_users_revision_and_only_theirs(store):
    writes = {
        "a trade": lambda: store.add_trade_intent(trade("alice", 1)),
        "its update": lambda: store.update_trade(trade("alice", 1).trade_id, status=MINED),
        "a decision": lambda: store.record_decisions([decision("alice", acted=False)]),
        "a decision acted on": lambda: store.record_decisions([], [SignalOutcome("alice", "WETH", "s", NOW, "done")]),
        "a risk trade": lambda: store.add_risk_trade(RiskTradeRow(user_id="alice", timestamp=NOW, asset="WETH",
                                                                  success=True, pnl_quote=1.0, trade_id="t"), []),
        "a lock": lambda: store.save_lock(LockRow(user_id="alice", rule="cooldown", asset="WETH", until=NOW,
                                                  reason="r", created_at=NOW)),
        "a clear": lambda: store.clear_rule("alice", "cooldown", NOW),
        "a peak": lambda: store.raise_peak("alice", 100.0, NOW),
        "a peak forgotten": lambda: store.reset_peak("alice"),
        "the sleeves": lambda: store.rebuild_positions("alice", [PositionRow(
            user_id="alice", asset="WETH", strategy="s", tokens=1, cost_quote=1.0, realised_quote=0.0,
            updated_at=NOW)]),
        "an exit mark": lambda: store.add_cycles([(_cycle("alice"), (), [ExitMarkRow(
            user_id="alice", asset="WETH", started_at=1, high_round_id=None, high_price=None, updated_at=NOW)])]),
        "an exit request": lambda: store.add_control_action(ControlActionRow(
            action="exit", user_id="alice", asset="WETH", operator="op", client_address="127.0.0.1", reason="r",
            requested_at=NOW, status=PENDING)),
    }
    for what, write in writes.items():
        before = revision(store, "alice")
        write()
        after = revision(store, "alice")
        assert after[0] > before[0] and after[1] == before[1], what
    assert revision(store, "bob") == (0, 0)
    store.save_lock(LockRow(user_id=GLOBAL_USER, rule="global_kill_switch", asset="*", until=None, reason="r",
                            created_at=NOW))
    assert revision(store, "bob") == (0, 1)


def test_a_decision_stored_with_its_outcome_changes_nothing_a_cycle_reads_and_is_not_counted(store):
    before = store.user_rows("alice", SPAN, NEWEST, since=NOW)
    assert store.record_decisions([decision("alice", acted=True, outcome="no trade: HOLD with none held")]) == {
        ("WETH", "s")}
    after = store.user_rows("alice", SPAN, NEWEST, since=NOW)
    assert after.revision == before.revision and after.unsettled == before.unsettled == []
    assert store.record_decisions([decision("alice", acted=False)]) == set()  # the bar is decided: not stored
    store.record_decisions([decision("alice", acted=False, bar_time=NOW + SPAN)])  # an open one counts
    assert store.user_rows("alice", SPAN, NEWEST, since=NOW).revision[0] == before.revision[0] + 1


def decision(user_id: str, *, acted: bool, outcome: str | None = None, bar_time: datetime = NOW) -> SignalRow:
    return SignalRow(user_id=user_id, asset="WETH", strategy="s", bar_time=bar_time, action="BUY", confidence=1.0,
                     reason="r", indicators={}, created_at=NOW, acted=acted, outcome=outcome)


def test_rows_kept_from_an_earlier_bar_give_the_rules_the_same_verdicts_as_a_fresh_read(store):
    limits = RiskProfile(cooldown=timedelta(hours=6), max_trades=3, max_trades_window=timedelta(days=1),
                         max_losses=2, loss_pause=timedelta(days=2), max_failures=2)
    span, newest = limits.memory()
    for day in range(8):  # a losing, a winning, a failed trade...: what each rule counts
        store.add_risk_trade(RiskTradeRow(user_id="alice", timestamp=NOW + timedelta(days=day), asset="WETH",
                                          success=day % 3 != 2, pnl_quote=(-1.0, 2.0, 0.0)[day % 3],
                                          trade_id=f"t{day}"), [])
    kept = KeptUserState()
    first = kept.user_rows(store, "alice", span, newest, since=NOW + timedelta(days=8))
    for later in range(9, 15):
        since = NOW + timedelta(days=later)
        reused, fresh = kept.user_rows(store, "alice", span, newest, since=since), store.user_rows(
            "alice", span, newest, since=since)
        assert reused is first and {row.id for row in fresh.risk.trades} <= {row.id for row in first.risk.trades}
        for outcome in (TradeRecord(since, "WETH", -5.0, True), TradeRecord(since, "WETH", 0.0, False)):
            from_kept, from_fresh = (RiskManager(store, "alice", limits, rows.risk).evaluator for rows in (reused, fresh))
            assert from_kept.record(outcome) == from_fresh.record(outcome), (later, outcome)
            assert [from_kept.blocking_lock(since + hour, "WETH", True) for hour in (timedelta(0), SPAN)] == [
                from_fresh.blocking_lock(since + hour, "WETH", True) for hour in (timedelta(0), SPAN)]


def test_kept_rows_are_reused_until_another_process_writes_the_users_state(store_url):
    keeper, operator = Store.open(store_url), Store.open(store_url)  # two connections: two processes
    kept = KeptUserState()
    try:
        first = kept.user_rows(keeper, "alice", SPAN, NEWEST, since=NOW)
        assert kept.user_rows(keeper, "alice", SPAN, NEWEST, since=NOW) is first  # nothing moved
        assert kept.user_rows(keeper, "alice", SPAN, NEWEST, since=NOW + SPAN) is first  # a later bar: a subset
        assert kept.user_rows(keeper, "alice", SPAN, NEWEST, since=NOW - SPAN) is not first  # an earlier one: more
        assert kept.user_rows(keeper, "alice", SPAN * 2, NEWEST, since=NOW) is not first  # a longer memory
        kept_rows = kept.user_rows(keeper, "alice", SPAN, NEWEST, since=NOW + SPAN)

        operator.save_lock(LockRow(user_id="alice", rule="kill_switch", asset="*", until=None, reason="operator",
                                   created_at=NOW))
        fresh = kept.user_rows(keeper, "alice", SPAN, NEWEST, since=NOW + SPAN)
        assert fresh is not kept_rows and [lock.reason for lock in fresh.risk.locks] == ["operator"]

        operator.save_lock(LockRow(user_id=GLOBAL_USER, rule="global_kill_switch", asset="*", until=None,
                                   reason="everyone", created_at=NOW))
        assert {lock.reason for lock in kept.user_rows(keeper, "alice", SPAN, NEWEST, since=NOW + SPAN).risk.locks} \
            == {"operator", "everyone"}
    finally:
        keeper.close()
        operator.close()


def test_a_state_with_work_in_progress_is_read_afresh_and_settled_pairs_are_forgotten_with_the_rows(store):
    kept = KeptUserState()
    kept.user_rows(store, "alice", SPAN, NEWEST, since=NOW)
    kept.note_settled("alice", NOW, {("WETH", "s")})
    assert kept.settled("alice", NOW, {("WETH", "s")})
    assert not kept.settled("alice", NOW, {("WETH", "s"), ("WBTC", "s")})  # a pair not seen decided
    assert not kept.settled("alice", NOW + SPAN, {("WETH", "s")})  # another bar

    store.add_trade_intent(trade("alice", 2, status=INTENT))  # unfinished: in progress
    busy = kept.user_rows(store, "alice", SPAN, NEWEST, since=NOW)
    assert busy.unfinished and not kept.settled("alice", NOW, {("WETH", "s")})
    assert kept.user_rows(store, "alice", SPAN, NEWEST, since=NOW) is not busy


def revision(store: Store, user_id: str) -> tuple[int, int]:
    """The user's and the global count of writes, as a cycle reads them with the user's rows."""
    return store.user_rows(user_id, SPAN, NEWEST, since=NOW).revision


def _cycle(user_id: str):
    from keepers.persistence.tables import CycleRow

    return CycleRow(keeper_id="k", user_id=user_id, started_at=NOW, block_time=NOW, duration_seconds=0.0,
                    rpc_calls=1, signals=0, trades_ok=0, trades_failed=0, blocks=0, memory_mb=1.0)
