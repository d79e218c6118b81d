"""A user's state kept in memory between cycles (issue 24, incremental state): the store's
triggers count every write to a user's state, whoever makes it, and a kept state is
reused only while that count stands still. On SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keepers.engine.kept_state import KeptUserState
from keepers.persistence.store import Store
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
        "a decision": lambda: store.add_signals([SignalRow(user_id="alice", asset="WETH", strategy="s", bar_time=NOW,
                                                           action="BUY", confidence=1.0, reason="r", indicators={},
                                                           created_at=NOW)]),
        "a decision acted on": lambda: store.settle_signal("alice", "WETH", "s", NOW, "done"),
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


def test_kept_rows_are_reused_until_another_process_writes_the_users_state(store_url):
    keeper, operator = Store.open(store_url), Store.open(store_url)  # two connections: two processes
    kept = KeptUserState()
    try:
        first = kept.user_rows(keeper, "alice", SPAN, NEWEST, since=NOW)
        assert kept.user_rows(keeper, "alice", SPAN, NEWEST, since=NOW) is first  # nothing moved
        assert kept.user_rows(keeper, "alice", SPAN, NEWEST, since=NOW + SPAN) is not first  # another bar's window
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
