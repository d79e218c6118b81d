"""Durability of the store: a writer process killed with SIGKILL hundreds of times while
it writes (tests/faults/store_writer.py, through the keeper's store methods) leaves a
SQLite store that passes ``PRAGMA integrity_check`` after every kill, with every trade
row whole: in one state of the write-ahead order, with exactly the columns that state
has, and at least as far along as the writer saw committed."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keepers import PROJECT_ROOT
from keepers.persistence.tables import DROPPED, FAILED, INTENT, MINED, SENT

WRITER = Path(__file__).with_name("store_writer.py")
# A writer is killed after a random number of committed trade steps (so every state is
# reached however slow the disk is), plus a random delay: the kill lands anywhere in the
# writes that follow.
MAX_COMMITS_BEFORE_KILL = 6
MAX_KILL_DELAY_SECONDS = 0.02

PLAN = ("amount_in", "min_amount_out", "oracle_floor", "pool_amount_out")
# Per status: the columns it must have, and those that must still be empty.
REQUIRED = {
    INTENT: PLAN,
    SENT: (*PLAN, "tx_hash", "nonce"),
    MINED: (*PLAN, "tx_hash", "nonce", "block_number", "gas_used", "gas_price", "amount_out", "price_in", "price_out"),
    FAILED: (*PLAN, "revert_reason"),
    DROPPED: (*PLAN, "tx_hash", "nonce", "revert_reason"),
}
EMPTY = {
    INTENT: ("tx_hash", "nonce", "block_number", "amount_out", "revert_reason"),
    SENT: ("block_number", "amount_out", "revert_reason"),
    MINED: ("revert_reason",),
    FAILED: ("tx_hash", "nonce", "block_number", "amount_out"),
    DROPPED: ("block_number", "amount_out"),
}
# What a row the writer saw committed in a status may have become since (one more step).
NEXT = {INTENT: {INTENT, SENT, FAILED}, SENT: {SENT, MINED, DROPPED}, MINED: {MINED}, FAILED: {FAILED},
        DROPPED: {DROPPED}}


class Writers:
    """The writer process (tests/faults/store_writer.py) and what its writers reported."""

    def __init__(self, url: str, stderr_file: Path) -> None:
        self.stderr = stderr_file.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(WRITER), url], cwd=PROJECT_ROOT, text=True, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        )
        self.committed: dict[str, str] = {}  # trade id -> the last status a writer saw committed

    def start_one(self, seed: int, commits: int) -> int:
        """Forks a writer; returns its pid once it has committed ``commits`` trade steps."""
        self.process.stdin.write(f"{seed}\n")
        self.process.stdin.flush()
        pid, seen = None, 0
        while pid is None or seen < commits:
            words = self._line()
            if words[0] == "started":
                pid = int(words[1])
            elif words[0] == "ended":
                raise AssertionError(f"writer {words[1]} ended by itself (status {words[2]})")
            else:
                seen += 1
        return pid

    def kill(self, pid: int) -> None:
        """SIGKILLs one writer and waits until the writer process saw it die of that."""
        os.kill(pid, signal.SIGKILL)
        words = self._line()
        while words[0] != "ended":  # lines the writer printed before it died
            words = self._line()
        status = int(words[2])
        assert int(words[1]) == pid and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    def stop(self) -> None:
        """Ends the writer process: stdin closed, it leaves its loop (killed by pid if not)."""
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()

    def _line(self) -> list[str]:
        line = self.process.stdout.readline()
        assert line, "the writer process died; see its stderr file"
        words = line.split()
        if words[0] not in ("started", "ended"):
            self.committed[words[0]] = words[1]
        return words


def check_store(path: Path, committed: dict[str, str]) -> int:
    """Integrity check and the state of every trade row; returns how many rows there are."""
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM trades").fetchall()
    finally:
        connection.close()
    for row in rows:
        status, number = row["status"], int(row["trade_id"][18:], 16)
        assert status in REQUIRED, dict(row)
        assert all(row[column] is not None for column in REQUIRED[status]), dict(row)
        assert all(row[column] is None for column in EMPTY[status]), dict(row)
        # The values are the writer's, whole (amounts are uint256 as decimal text).
        assert int(row["amount_in"]) == 10**21 + number, dict(row)
        if status == MINED:
            assert (int(row["amount_out"]), row["block_number"]) == (3 * 10**17 + number, number + 1), dict(row)
        assert status in NEXT[committed.get(row["trade_id"], INTENT)], (dict(row), committed.get(row["trade_id"]))
    missing = set(committed) - {row["trade_id"] for row in rows}
    assert not missing, f"committed trade steps lost: {sorted(missing)[:3]}"
    return len(rows)


@pytest.mark.parametrize("kills", [200, pytest.param(2_000, marks=pytest.mark.long)])
def test_a_writer_killed_mid_write_leaves_a_whole_store(tmp_path, kills):
    path = tmp_path / "sentinel.db"
    writers = Writers(f"sqlite:///{path}", tmp_path / "writer-stderr.txt")
    rng = random.Random(kills)
    trades = 0
    try:
        for seed in range(kills):
            pid = writers.start_one(seed, rng.randint(1, MAX_COMMITS_BEFORE_KILL))
            time.sleep(rng.uniform(0, MAX_KILL_DELAY_SECONDS))  # the writer goes on writing meanwhile
            writers.kill(pid)
            now = check_store(path, writers.committed)
            assert now >= trades  # nothing that was there went away
            trades = now
    finally:
        writers.stop()
    assert trades >= kills  # every writer committed at least one trade step
    assert {INTENT, SENT, MINED} <= set(writers.committed.values())
