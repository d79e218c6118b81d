"""The chain as the referee: after one short replay (the truth test's window, in which
carol's drawdown kill switch engages), `ape run keeper verify` proves every trade from
the chain alone and the replay's report ends with that line; a strategies file edited
afterwards fails the trades it affects; a store rebuilt from the chain is the original
(trades, positions, risk record, locks, peaks, bars) and its next cycle decides as the
original's does; a trade sent by hand through an allowed keeper account is unexplained.

The tests share the session's replay of the window (tests/e2e/conftest.py, which the
truth test reads too: its report files, not its chain) and run in this order (the last
two move the chain on)."""

from __future__ import annotations

import csv
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers_e2e import APE, PROJECT_ROOT, assert_ok

from keepers.persistence.store import Store
from keepers.persistence.tables import MINED, SKIPPED

# What the rebuild cannot know (not on the chain): the keeper process's id and the rows'
# wall-clock times. Every other column of a mined trade must come back as it was.
NOT_ON_CHAIN = {"keeper_id", "created_at", "updated_at"}


@dataclass(frozen=True)
class Replayed:
    folder: Path
    env: dict
    network: list[str]
    output: str  # what `ape run simulate` printed
    head: int  # the chain's head right after the replay
    live_trades: list[dict]

    def ape(self, script: str, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([APE, "run", script, *arguments], cwd=PROJECT_ROOT, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=600)

    def verify(self, *arguments: str, env: dict | None = None) -> tuple[int, dict]:
        result = self.ape("keeper", "verify", *self.network, "--json", *arguments, env=env)
        assert result.stdout.strip(), result.stderr
        return result.returncode, json.loads(result.stdout)

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.folder / 'run' / 'store.db'}"


@pytest.fixture(scope="module")
def replayed(window_replay):
    with open(window_replay.folder / "run" / "live_trades.csv") as trades:
        live = list(csv.DictReader(trades))
    return Replayed(window_replay.folder, window_replay.env, window_replay.network, window_replay.output,
                    window_replay.head, live)


def test_every_replayed_trade_is_proved_and_the_report_ends_with_the_verify_line(replayed):
    code, report = replayed.verify("--to-block", str(replayed.head))
    assert code == 0, report
    assert report["unexplained"] == 0 and report["proved"] == report["trades"] == len(replayed.live_trades) >= 5
    proved = {v["trade_id"]: (v["user"], v["asset"], v["strategy"], v["side"]) for v in report["verdicts"]}
    assert proved == {t["trade_id"]: (t["user"], t["token"], t["strategy"], t["side"]) for t in replayed.live_trades}
    last_line = replayed.output.strip().splitlines()[-1]
    assert last_line.startswith("verify: ") and f": {len(replayed.live_trades)} proved, 0 unexplained" in last_line


def test_a_strategies_file_edited_after_the_fact_fails_the_trades_it_affects(replayed):
    edited = replayed.folder / "strategies-edited.yaml"
    original = (PROJECT_ROOT / "data" / "config" / "strategies.yaml").read_text()
    # Bollinger bands four deviations wide: its trades' bars no longer close outside them.
    changed = original.replace("bollinger: {period: 20, nbdev: 2.0", "bollinger: {period: 20, nbdev: 4.0").replace(
        "bollinger: {nbdev: 2.5}", "bollinger: {nbdev: 4.0}")
    assert changed != original
    edited.write_text(changed)
    code, report = replayed.verify("--to-block", str(replayed.head), env={"SENTINEL_STRATEGIES_FILE": str(edited)})
    assert code == 1
    affected = {t["trade_id"] for t in replayed.live_trades if t["strategy"] == "bollinger"}
    assert affected and {v["trade_id"] for v in report["verdicts"] if not v["proved"]} == affected
    for verdict in report["verdicts"]:
        if not verdict["proved"]:
            assert verdict["reason"].startswith("bollinger says HOLD"), verdict


def _mined(store: Store) -> dict[str, dict]:
    columns = [column.name for column in store.trades()[0].__table__.columns if column.name not in NOT_ON_CHAIN]
    return {row.trade_id: {c: getattr(row, c) for c in columns} for row in store.trades(statuses=[MINED])}


def _risk(store: Store, user: str):
    trades, locks, clears, peak = store.risk_state(user)
    return ([(t.timestamp, t.asset, t.pnl_quote, t.success, t.trade_id) for t in trades],
            sorted((lock.rule, lock.asset, lock.until, lock.reason, lock.created_at) for lock in locks), clears, peak)


def _positions(store: Store, user: str):
    return sorted((p.asset, p.strategy, p.tokens, p.cost_quote, p.realised_quote) for p in store.positions(user))


def _bars(store: Store, series: str, before: datetime | None = None):
    return [(b.bar_time, b.open, b.high, b.low, b.close, b.source, b.round_id)
            for b in store.bars(series, 86_400, before)]


def _decisions(store: Store, user: str, since: datetime):
    signals = [(s.asset, s.strategy, s.bar_time, s.action, s.outcome) for s in store.signals(user)
               if s.bar_time >= since]
    trades = [(t.trade_id, t.side, t.amount_in, t.status, t.revert_reason) for t in store.trades(user, [SKIPPED])]
    blocks = [(e.asset, e.rule, e.reason, e.time) for e in store.risk_events(user) if e.time >= since]
    return signals, trades, blocks


def test_a_store_rebuilt_from_the_chain_is_the_original_and_decides_the_same(replayed):
    rebuilt_url = f"sqlite:///{replayed.folder / 'rebuilt.db'}"
    output = assert_ok(replayed.ape("keeper", "rebuild", "--from-chain", *replayed.network, "--store-url", rebuilt_url))
    assert f"alice: {sum(t['user'] == 'alice' for t in replayed.live_trades)} mined trade(s)" in output
    original, rebuilt = Store.open(replayed.store_url), Store.open(rebuilt_url)
    try:
        assert _mined(rebuilt) == _mined(original)
        for user in ("alice", "bob", "carol"):
            assert _positions(rebuilt, user) == _positions(original, user), user
            assert _risk(rebuilt, user) == _risk(original, user), user
        assert any(lock[0] == "kill_switch" for lock in _risk(original, "carol")[1])  # the window's point
        # Every closed bar, as the keeper sealed it from the rounds; the open one (the window's
        # last) it folds from its readings until it closes, and so does the rebuilt store's keeper.
        last_bar = datetime(2022, 5, 29, tzinfo=UTC)
        for series in ("ETH", "BTC", "LTC"):
            assert _bars(rebuilt, series) == _bars(original, series, before=last_bar) and len(
                _bars(rebuilt, series)) == 89, series
    finally:
        original.close()
        rebuilt.close()
    # Two more bars on the chain (a replay with a store of its own), then one dry-run cycle on each store.
    assert_ok(replayed.ape("simulate", *replayed.network, "--from", "2022-05-30", "--bars", "2",
                           "--out", str(replayed.folder / "next")))
    for url in (replayed.store_url, rebuilt_url):
        assert_ok(replayed.ape("keeper", "--once", "--dry-run", *replayed.network, "--store-url", url))
    since = datetime(2022, 5, 30, tzinfo=UTC)
    original, rebuilt = Store.open(replayed.store_url), Store.open(rebuilt_url)
    try:
        for user in ("alice", "bob", "carol"):
            decided = _decisions(original, user, since)
            assert decided[0], user  # the cycle decided the new bar
            assert _decisions(rebuilt, user, since) == decided, user
    finally:
        original.close()
        rebuilt.close()


def test_a_trade_sent_by_hand_through_an_allowed_keeper_account_is_unexplained(replayed):
    sent = assert_ok(replayed.ape("trade", *replayed.network, "--user", "alice", "--sell", "USDC", "--buy", "WETH",
                                  "--amount", "50"))
    trade_id = sent.strip().rsplit("trade id ", 1)[1]
    code, report = replayed.verify()
    assert code == 1
    unexplained = [v for v in report["verdicts"] if not v["proved"]]
    assert [v["trade_id"] for v in unexplained] == [trade_id]
    assert "commits to none of alice's WETH strategies" in unexplained[0]["reason"]
    assert report["proved"] == len(replayed.live_trades)
