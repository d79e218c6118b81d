"""`keepers.persistence.backup` on real SQLite files: a backup is a whole, self-contained copy; a
restore validates the file, refuses while a keeper is alive in the target store (unless
forced), replaces the store atomically without replaying its old WAL, and leaves the
store untouched whenever it refuses. (The chain test next to this file runs both as
`ape run keeper backup / restore` beside a running keeper.)"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from keepers.base.clock import now_utc
from keepers.base.errors import SentinelError
from keepers.persistence.backup import backup_store, restore_store
from keepers.persistence.store import Store
from keepers.persistence.tables import TradeRow

FRESH_SECONDS = 180


def trade(number: int) -> TradeRow:
    now = now_utc()
    return TradeRow(
        trade_id=f"0x{number:064x}", user_id="alice", user_address="0x" + "ab" * 20, keeper_id="k", chain_id=31337,
        asset="WETH", strategy="bollinger", side="BUY", bar_time=now, token_in="0x" + "01" * 20,
        token_out="0x" + "02" * 20, amount_in=10**21, status="intent", replaced_tx_hashes=[], created_at=now,
        updated_at=now,
    )


def store_with_trades(path: Path, count: int) -> Store:
    store = Store.open(f"sqlite:///{path}")
    for number in range(count):
        store.add_trade_intent(trade(number))
    return store


@pytest.fixture
def live(tmp_path):
    """The store a keeper runs on (3 trades, WAL in use, connection open) and its URL."""
    store = store_with_trades(tmp_path / "state" / "sentinel.db", 3)
    yield store, f"sqlite:///{tmp_path / 'state' / 'sentinel.db'}"
    store.close()


def restore(url: str, source: Path, *, force: bool = False):
    return restore_store(url, source, force=force, now=now_utc(), fresh_seconds=FRESH_SECONDS)


def test_a_backup_is_one_whole_file_with_the_rows_committed_so_far(live, tmp_path):
    store, url = live
    assert Path(f"{store.engine.url.database}-wal").stat().st_size > 0  # rows still in the WAL
    result = backup_store(url, tmp_path / "backups" / "monday.db")
    assert (result.trades, result.revision) == (3, store.revision())
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == ["monday.db"]  # no -wal, no temp file
    with sqlite3.connect(result.target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    store.add_trade_intent(trade(3))
    assert backup_store(url, result.target).trades == 4  # replaced in place


def test_a_restore_replaces_the_store_and_drops_its_old_wal(live, tmp_path):
    store, url = live
    backup = backup_store(url, tmp_path / "backup.db").target
    store.add_trade_intent(trade(3))  # after the backup: in the store's WAL only
    store.close()
    result = restore(url, backup)
    assert result.trades == 3
    assert not Path(f"{result.target}-wal").exists() and not Path(f"{result.target}-shm").exists()
    reopened = Store.open(url)
    assert [row.trade_id for row in reopened.trades()] == [f"0x{n:064x}" for n in range(3)]
    reopened.close()
    assert sorted(p.name for p in result.target.parent.iterdir() if p.name.startswith(".")) == []  # no temp left


def test_a_restore_refuses_while_a_keeper_holds_a_lease_unless_forced(live, tmp_path):
    store, url = live
    backup = backup_store(url, tmp_path / "backup.db").target
    now = now_utc()
    store.acquire_lease("alice", "keeper-a", now, now + timedelta(minutes=5))
    before = store_bytes(store)
    with pytest.raises(SentinelError, match=r"^store_url: keeper keeper-a holds alice's lease until .*--force"):
        restore(url, backup)
    assert store_bytes(store) == before
    store.close()
    assert restore(url, backup, force=True).trades == 3


def test_a_restore_drops_the_leases_the_backup_caught(live, tmp_path):
    store, url = live
    now = now_utc()
    store.acquire_lease("alice", "keeper-a", now, now + timedelta(minutes=5))
    backup = backup_store(url, tmp_path / "backup.db").target
    store.release_lease("alice", "keeper-a")  # keeper-a stopped
    store.close()
    restore(url, backup)
    reopened = Store.open(url)
    assert reopened.leases() == [] and reopened.acquire_lease("alice", "keeper-b", now, now + timedelta(minutes=5))
    reopened.close()


def test_a_fresh_heartbeat_counts_only_while_its_process_runs(live, tmp_path):
    store, url = live
    backup = backup_store(url, tmp_path / "backup.db").target
    beat = {"interval_seconds": 60, "host": socket.gethostname(), "started_at": now_utc()}
    store.beat("running", pid=os.getpid(), **beat)
    with pytest.raises(SentinelError, match=rf"keeper running \(pid {os.getpid()} on .*\) beat 0 s ago"):
        restore(url, backup)
    store.beat("running", pid=dead_pid(), **beat)  # the same keeper, since crashed
    store.close()
    assert restore(url, backup).trades == 3


@pytest.mark.parametrize(("content", "problem"), [
    (None, r"no such file"),
    (b"not a database at all" * 100, r"not a readable SQLite database \(file is not a database\)"),
    ("other tables", r"not a Sentinel store \(no schema revision\)"),
    ("revision 9999", r"schema revision '9999' is not one this version knows \(0001, 0002, 0003, 0004, 0005, 0006, 0007, 0008, 0009\)"),
])
def test_a_restore_refuses_a_file_that_is_not_a_store_and_touches_nothing(live, tmp_path, content, problem):
    store, url = live
    source = tmp_path / "candidate.db"
    if isinstance(content, bytes):
        source.write_bytes(content)
    elif content == "other tables":
        with sqlite3.connect(source) as other:
            other.execute("CREATE TABLE photos (id INTEGER)")
    elif content == "revision 9999":
        backup_store(url, source)
        with sqlite3.connect(source) as newer:
            newer.execute("UPDATE alembic_version SET version_num = '9999'")
    before = store_bytes(store)
    with pytest.raises(SentinelError, match=rf"^--from {re.escape(str(source))}: {problem}") as refused:
        restore(url, source)
    assert "\n" not in str(refused.value)
    assert store_bytes(store) == before


def test_a_corrupted_backup_is_refused(live, tmp_path):
    store, url = live
    for number in range(3, 400):  # enough rows for several b-tree pages
        store.add_trade_intent(trade(number))
    backup = backup_store(url, tmp_path / "backup.db").target
    data = bytearray(backup.read_bytes())
    page = 4096
    data[page * 3:page * 4] = b"\xff" * page  # a b-tree page of the schema's tables, overwritten
    backup.write_bytes(bytes(data))
    with pytest.raises(SentinelError, match=rf"^--from {re.escape(str(backup))}: (fails SQLite's integrity check|not a readable)"):
        restore(url, backup)
    assert len(store.trades()) == 400


@pytest.mark.parametrize("url", ["postgresql+psycopg://sentinel:secret@db.example/sentinel",
                                 "sqlite:///:memory:"])
def test_backup_and_restore_refuse_a_store_that_is_not_a_sqlite_file(url, tmp_path):
    with pytest.raises(SentinelError) as backup_refused:
        backup_store(url, tmp_path / "copy.db")
    with pytest.raises(SentinelError) as restore_refused:
        restore(url, tmp_path / "copy.db")
    for refused in (backup_refused, restore_refused):
        message = str(refused.value)
        assert message.startswith("store_url: ") and "\n" not in message and "secret" not in message
        assert ("pg_dump / pg_restore" in message) == url.startswith("postgresql")
    assert not (tmp_path / "copy.db").exists()


def store_bytes(store: Store) -> bytes:
    """The store's file and WAL, as they are on disk."""
    database = Path(store.engine.url.database)
    wal = Path(f"{database}-wal")
    return database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
