"""The store on a SQLite file and on a real PostgreSQL server: schema upgrades, the
write-ahead trade rows, bars, leases and risk rows."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from test_keeper_chain import store_transactions

from keepers.base.clock import now_utc
from keepers.base.errors import SentinelError
from keepers.persistence.store import SignalOutcome, Store
from keepers.persistence.tables import (
    INTENT,
    MINED,
    SENT,
    LockRow,
    PositionRow,
    RiskTradeRow,
    SignalRow,
    TradeRow,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def trade_row(trade_id: str = "0x" + "ab" * 32, **fields) -> TradeRow:
    values = dict(
        trade_id=trade_id, user_id="alice", user_address="0x" + "11" * 20, keeper_id="k1", chain_id=31337,
        asset="WETH", strategy="rsi_sma", side="BUY", bar_time=T0, token_in="0x" + "22" * 20,
        token_out="0x" + "33" * 20, amount_in=2**200 + 7, status=INTENT, replaced_tx_hashes=[], dry_run=False,
        created_at=now_utc(), updated_at=now_utc(),
    )
    values.update(fields)
    return TradeRow(**values)


def test_a_store_of_the_first_schema_upgrades_without_losing_rows(store_url):
    old = Store.open(store_url, revision="0001")
    assert old.revision() == "0001"
    # The first schema's columns only: today's ORM row has columns later revisions added.
    first = {column: value for column, value in vars(trade_row()).items() if column not in ("exit_trigger", "bounty")
             and not column.startswith("_")}
    with old.engine.begin() as connection:
        connection.execute(TradeRow.__table__.insert(), [first])
    old.record_prices([("ETH", 86400, T0, 2000.0, "oracle", 5)])
    with old.engine.connect() as connection:
        tables = set(old.engine.dialect.get_table_names(connection))
    assert "leases" not in tables and "trades" in tables
    old.close()

    upgraded = Store.open(store_url)
    assert upgraded.revision() == "0009"
    row = upgraded.trade("0x" + "ab" * 32)
    assert row.amount_in == 2**200 + 7 and row.bar_time == T0
    assert upgraded.bars("ETH", 86400)[0].close == 2000.0
    assert upgraded.acquire_lease("alice", "k1", T0, T0 + timedelta(minutes=5))
    upgraded.close()


def test_a_decision_is_stored_once_and_moves_through_its_states(store):
    assert store.add_trade_intent(trade_row())
    assert not store.add_trade_intent(trade_row(amount_in=1))  # the same trade id: already decided
    store.update_trade("0x" + "ab" * 32, status=SENT, tx_hash="0x" + "cd" * 32, nonce=4)
    store.update_trade("0x" + "ab" * 32, status=MINED, amount_out=12345, block_number=9, gas_used=270_000)
    row = store.trade("0x" + "ab" * 32)
    assert (row.status, row.tx_hash, row.nonce, row.amount_out, row.amount_in) == (
        MINED, "0x" + "cd" * 32, 4, 12345, 2**200 + 7)
    assert [r.trade_id for r in store.trades("alice", [INTENT, SENT])] == []
    with pytest.raises(KeyError):
        store.update_trade("0xmissing", status=MINED)


def test_a_trade_settles_with_its_sleeve_and_risk_record_in_one_transaction_and_once(store):
    trade_id = "0x" + "ab" * 32
    store.add_trade_intent(trade_row(status=SENT))
    risk = RiskTradeRow(user_id="alice", timestamp=T0, asset="WETH", pnl_quote=None, success=True, trade_id=trade_id)
    lock = LockRow(user_id="alice", rule="cooldown", asset="WETH", until=T0 + timedelta(days=1), reason="r",
                   created_at=T0)
    position = PositionRow(user_id="alice", asset="WETH", strategy="rsi_sma", tokens=5, cost_quote=10.0,
                           realised_quote=0.0)
    with store_transactions() as counted:
        row, recorded = store.settle_trade(trade_id, [position], risk, [lock], status=MINED, amount_out=5)
    assert len(counted) == 1 and recorded and (row.status, row.amount_out) == (MINED, 5)
    assert [(p.strategy, p.tokens) for p in store.positions("alice")] == [("rsi_sma", 5)]
    assert [r.trade_id for r in store.risk_state("alice").trades] == [trade_id]
    assert [(r.rule, r.asset) for r in store.locks(["alice"])] == [("cooldown", "WETH")]
    store.clear_rule("alice", "cooldown", T0)
    # Settled again (a restart's reconcile): the risk record is known, so its locks are not stored again.
    again = RiskTradeRow(user_id="alice", timestamp=T0, asset="WETH", pnl_quote=None, success=True, trade_id=trade_id)
    _, recorded = store.settle_trade(trade_id, [], again, [lock], status=MINED, amount_out=5)
    with store.session() as session:
        risk_rows = session.scalar(text("SELECT count(*) FROM risk_trades"))
    assert not recorded and risk_rows == 1 and store.locks(["alice"]) == []


def test_times_come_back_as_aware_utc(store):
    store.add_trade_intent(trade_row())
    assert store.trade("0x" + "ab" * 32).created_at.tzinfo is UTC
    with pytest.raises(Exception, match="timezone-aware"):
        store.add_trade_intent(trade_row(trade_id="0x01", bar_time=datetime(2024, 1, 1)))


def test_readings_of_one_bar_from_many_writers_at_once__folded_without_conflict(store, store_url):
    # Workers on several machines read the same feed in the same bar (found by the
    # cluster: a read-then-insert lost the race with a unique-key error).
    writers = [Store.open(store_url) for _ in range(6)]
    start = threading.Barrier(len(writers))
    errors: list[Exception] = []

    def fold(writer: Store, number: int) -> None:
        start.wait()
        try:
            for step in range(10):
                price = 100.0 + number * 10 + step
                writer.record_prices([("ETH", 86400, T0, price, "oracle", number * 100 + step + 1)])
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=fold, args=(writer, number)) for number, writer in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.close()
    assert errors == []
    (bar,) = store.bars("ETH", 86400)
    assert (bar.high, bar.low) == (159.0, 100.0)  # every reading folded in: the extremes of all of them


def test_readings_fold_into_bars_and_backfill_never_overwrites(store):
    store.record_prices([("ETH", 86400, T0, 100.0, "oracle", 1), ("ETH", 86400, T0, 120.0, "oracle", 2)])
    store.record_prices([("ETH", 86400, T0, 90.0, "oracle", 3)])
    store.record_prices([("ETH", 86400, T0, 500.0, "oracle", 3)])  # the same round read again: ignored
    bar = store.bars("ETH", 86400)[0]
    assert (bar.open, bar.high, bar.low, bar.close) == (100.0, 120.0, 90.0, 90.0)
    added = store.add_bars("ETH", 86400, [(T0 - timedelta(days=1), 1, 2, 0.5, 1.5), (T0, 7, 7, 7, 7)], "file")
    assert added == 1
    assert [b.close for b in store.bars("ETH", 86400)] == [1.5, 90.0]
    assert [b.close for b in store.bars("ETH", 86400, before=T0)] == [1.5]
    closes = store.closes({"ETH": None, "BTC": None}, 86400, before=T0 + timedelta(days=1))
    assert [close for _, close, _ in closes["ETH"]] == [1.5, 90.0] and closes["BTC"] == []
    heads, _ = store.decision_view("alice", ["ETH", "BTC"], 86400, T0, [])  # the heads before the next bar
    assert heads.newest == {"ETH": T0} and heads.final == {"ETH": T0 - timedelta(days=1)}  # T0's bar: readings
    assert store.decision_view("alice", ["ETH"], 86400, T0 - timedelta(days=1), [])[0].newest == {
        "ETH": T0 - timedelta(days=1)}


def test_a_bar_is_decided_once(store):
    row = dict(user_id="alice", asset="WETH", strategy="macd", bar_time=T0, action="HOLD", confidence=0.0,
               reason="r", indicators={"macd": 1.5, "signal": None}, created_at=now_utc())
    other = {**row, "asset": "WBTC"}
    assert store.record_decisions([SignalRow(**row), SignalRow(**other)]) == {("WETH", "macd"), ("WBTC", "macd")}
    later = {**row, "bar_time": T0 + timedelta(days=1)}
    assert store.record_decisions([SignalRow(**row), SignalRow(**later)]) == {("WETH", "macd")}  # T0 decided already
    assert len(store.signals("alice")) == 3
    pairs = [("WETH", "macd"), ("WBTC", "macd")]
    _, decided = store.decision_view("alice", [], 86400, T0, pairs)
    assert decided == {("WETH", "macd"), ("WBTC", "macd")}
    assert store.decision_view("alice", [], 86400, T0 + timedelta(days=1), pairs)[1] == {("WETH", "macd")}
    assert len(store.unsettled_signals("alice")) == 3  # decided, not yet acted on
    store.record_decisions([], [SignalOutcome("alice", "WETH", "macd", T0, "expired: not acted on before the next bar closed")])
    left = store.unsettled_signals("alice")  # one by one: the others are still open
    assert [(s.asset, s.bar_time) for s in left] == [("WBTC", T0), ("WETH", T0 + timedelta(days=1))]
    settled = next(s for s in store.signals("alice") if s.acted)
    assert settled.outcome == "expired: not acted on before the next bar closed"
    assert store.signals("alice")[0].indicators == {"macd": 1.5, "signal": None}


def test_a_lease_belongs_to_one_keeper_until_it_expires(store):
    now = T0
    assert store.acquire_lease("alice", "k1", now, now + timedelta(seconds=60))
    assert not store.acquire_lease("alice", "k2", now + timedelta(seconds=30), now + timedelta(seconds=90))
    assert store.acquire_lease("alice", "k1", now + timedelta(seconds=30), now + timedelta(seconds=90))  # renewal
    assert store.acquire_lease("alice", "k2", now + timedelta(seconds=91), now + timedelta(seconds=150))  # expired
    store.release_lease("alice", "k1")  # not k1's any more: nothing happens
    assert [lease.owner for lease in store.leases()] == ["k2"]
    store.release_lease("alice", "k2")
    assert store.leases() == []


def test_a_risk_trade_and_its_locks_are_written_together_once(store):
    row = RiskTradeRow(user_id="alice", timestamp=T0, asset="WETH", pnl_quote=-5.0, success=True, trade_id="0x1")
    lock = LockRow(user_id="alice", rule="cooldown", asset="WETH", until=T0 + timedelta(days=1), reason="r",
                   created_at=T0)
    assert store.add_risk_trade(row, [lock])
    again = RiskTradeRow(user_id="alice", timestamp=T0, asset="WETH", pnl_quote=-5.0, success=True, trade_id="0x1")
    assert not store.add_risk_trade(again, [])
    trades, locks, clears, _ = store.risk_state("alice")
    assert len(trades) == 1 and locks[0].until == T0 + timedelta(days=1)
    assert store.clear_rule("alice", "cooldown", T0) == 1
    _, locks, clears, _ = store.risk_state("alice")
    assert locks == [] and clears == {"cooldown": T0}


def test_peak_only_rises_until_reset(store):
    assert store.raise_peak("alice", 100.0, T0) == 100.0
    assert store.raise_peak("alice", 80.0, T0) == 100.0
    assert store.raise_peak("alice", 130.0, T0) == 130.0
    store.reset_peak("alice")
    assert store.raise_peak("alice", 80.0, T0) == 80.0


LEASE_RACE = """
import sys
from datetime import UTC, datetime, timedelta
from keepers.persistence.store import Store
store = Store.open(sys.argv[1])
now = datetime(2024, 1, 1, tzinfo=UTC)
won = [user for user in map(str, range(40)) if store.acquire_lease(user, sys.argv[2], now, now + timedelta(hours=1))]
print(",".join(won))
"""


def test_two_processes_never_hold_the_same_lease(store_url):
    Store.open(store_url).close()
    processes = [
        subprocess.Popen([sys.executable, "-c", LEASE_RACE, store_url, owner], stdout=subprocess.PIPE, text=True)
        for owner in ("k1", "k2")
    ]
    won = [set(filter(None, process.communicate(timeout=120)[0].strip().split(","))) for process in processes]
    assert all(process.returncode == 0 for process in processes)
    assert not won[0] & won[1]
    assert won[0] | won[1] == {str(user) for user in range(40)}


def test_sqlite_store_uses_wal(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    store.close()


def test_trade_writes_wait_for_the_disk_and_per_cycle_records_do_not(store_url):
    store = Store.open(store_url)
    setting = "PRAGMA synchronous" if store_url.startswith("sqlite") else "SHOW synchronous_commit"
    with store.session() as durable, store.session(durable=False) as relaxed:
        seen = [str(session.execute(text(setting)).scalar()) for session in (durable, relaxed)]
    assert seen == (["2", "1"] if store_url.startswith("sqlite") else ["on", "off"])  # FULL / NORMAL
    store.close()


def test_an_unreachable_store_is_one_line(tmp_path):
    with pytest.raises(SentinelError, match=r"^store_url: cannot open the store \(.*\); check the URL and server$"):
        Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none")
