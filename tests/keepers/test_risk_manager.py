"""The live risk manager: the shared rules' state survives a new process, kill switches
wait for a person, and every stop is recorded with its reason."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from keepers.engine.risk import (
    GLOBAL_KILL_SWITCH,
    RiskManager,
    clear,
    engage_global_kill_switch,
)
from keepers.persistence.tables import GLOBAL_USER
from keepers.settings.keeper import RiskProfile
from strategies.risk import KILL_SWITCH, TradeRecord

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
LIMITS = RiskProfile(cooldown=timedelta(hours=6), max_losses=2, loss_pause=timedelta(days=1), max_failures=2,
                     max_daily_loss_quote=None, kill_switch_drawdown=0.2)

RECORD_IN_A_PROCESS = """
import sys
from datetime import UTC, datetime, timedelta
from keepers.settings.keeper import RiskProfile
from keepers.engine.risk import RiskManager
from keepers.persistence.store import Store
from strategies.risk import TradeRecord
t0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
limits = RiskProfile(cooldown=timedelta(hours=6), max_losses=2, loss_pause=timedelta(days=1), max_failures=2,
                     max_daily_loss_quote=None, kill_switch_drawdown=0.2)
risk = RiskManager(Store.open(sys.argv[1]), "alice", limits)
risk.record_trade(TradeRecord(t0, "WETH", None), "0xbuy")
risk.record_trade(TradeRecord(t0 + timedelta(hours=1), "WETH", -10.0), "0xsell1")
risk.record_trade(TradeRecord(t0 + timedelta(hours=2), "WETH", -5.0), "0xsell2")
"""


def test_locks_made_in_one_process_hold_in_the_next(store_url):
    subprocess.run([sys.executable, "-c", RECORD_IN_A_PROCESS, store_url], check=True, timeout=120)
    from keepers.persistence.store import Store

    store = Store.open(store_url)
    risk = RiskManager(store, "alice", LIMITS)
    soon = T0 + timedelta(hours=3)
    decision = risk.can_trade("WETH", opening=True, now=soon)
    assert not decision.allowed and decision.rule == "cooldown"
    assert not risk.can_trade("WBTC", opening=True, now=soon).allowed  # the loss streak locks every asset
    assert risk.can_trade("WBTC", opening=True, now=soon).rule == "loss_streak"
    assert risk.can_trade("WETH", opening=False, now=soon).allowed  # an exit is never stopped by a timed lock
    assert risk.can_trade("WBTC", opening=True, now=T0 + timedelta(days=1, hours=3)).allowed
    # A replayed record (a restart reconciling the same trade) changes nothing.
    assert risk.record_trade(TradeRecord(T0 + timedelta(hours=2), "WETH", -5.0), "0xsell2") == []
    assert len(store.risk_state("alice")[0]) == 3
    store.close()


def test_failures_engage_a_kill_switch_that_survives_restarts_until_cleared(store):
    risk = RiskManager(store, "alice", LIMITS)
    risk.record_trade(TradeRecord(T0, "WETH", None, success=False), "0xf1")
    locks = risk.record_trade(TradeRecord(T0 + timedelta(minutes=1), "WETH", None, success=False), "0xf2")
    assert [lock.rule for lock in locks] == ["consecutive_failures"]
    later = T0 + timedelta(days=30)
    restarted = RiskManager(store, "alice", LIMITS)
    assert not restarted.can_trade("WETH", opening=False, now=later).allowed  # even a SELL: a kill switch
    assert clear(store, "alice", "consecutive_failures", later) == 1
    cleared = RiskManager(store, "alice", LIMITS)
    assert cleared.can_trade("WETH", opening=True, now=later).allowed
    # The rule ignores failures before the clear: one more failure is not two in a row.
    assert cleared.record_trade(TradeRecord(later, "WETH", None, success=False), "0xf3") == []


def test_drawdown_from_peak_engages_the_users_kill_switch(store):
    risk = RiskManager(store, "alice", LIMITS)
    assert risk.check_drawdown(10_000.0, T0) is None
    assert risk.check_drawdown(12_000.0, T0) is None
    assert risk.check_drawdown(9_700.0, T0) is None  # 19.2% below the peak: under the 20% limit
    lock = risk.check_drawdown(9_500.0, T0)
    assert lock is not None and lock.rule == KILL_SWITCH and "20.8% below its peak 12,000.00" in lock.reason
    assert not RiskManager(store, "alice", LIMITS).can_trade("WETH", False, T0 + timedelta(days=9)).allowed
    clear(store, "alice", KILL_SWITCH, T0)
    fresh = RiskManager(store, "alice", LIMITS)
    assert fresh.can_trade("WETH", True, T0).allowed
    assert fresh.check_drawdown(9_500.0, T0) is None  # the reference restarts from the current value


def test_the_global_kill_switch_stops_every_user(store):
    engage_global_kill_switch(store, "oracle incident", T0)
    for user in ("alice", "bob"):
        decision = RiskManager(store, user, LIMITS).can_trade("WETH", opening=False, now=T0)
        assert not decision.allowed and decision.rule == GLOBAL_KILL_SWITCH and "oracle incident" in decision.reason
    assert clear(store, GLOBAL_USER, GLOBAL_KILL_SWITCH, T0) == 1
    assert RiskManager(store, "bob", LIMITS).can_trade("WETH", opening=True, now=T0).allowed


def test_every_stop_is_recorded_with_its_reason(store):
    risk = RiskManager(store, "carol", LIMITS)
    risk.block("LTC", "oracle_stale", "answer is 90001 s old (limit 90000 s)", T0)
    events = store.risk_events("carol")
    assert [(e.asset, e.rule, e.reason, e.time) for e in events] == [
        ("LTC", "oracle_stale", "answer is 90001 s old (limit 90000 s)", T0)]


def test_a_long_history_is_restored_in_part_and_the_rules_decide_as_with_all_of_it(store):
    """The keeper restores only the trades the rules can still see (RiskLimits.memory):
    a cycle's cost does not grow with the history, and no decision changes."""
    limits = RiskProfile(cooldown=timedelta(hours=6), max_trades=5, max_trades_window=timedelta(days=3),
                         max_daily_loss_quote=50.0, max_losses=3, loss_pause=timedelta(days=1), max_failures=2,
                         kill_switch_drawdown=None)
    risk = RiskManager(store, "alice", limits)
    history = [TradeRecord(T0 + timedelta(hours=7 * n), ("WETH", "WBTC")[n % 2], None if n % 3 == 0 else
                           (-20.0 if n % 4 else 15.0), success=n % 11 != 0) for n in range(600)]
    for number, record in enumerate(history):
        risk.record_trade(record, f"0x{number:064x}")
    restored = RiskManager(store, "alice", limits)
    span, newest = limits.memory()
    assert len(restored.evaluator.trades) < 30 < len(history)
    assert len(restored.evaluator.trades) >= newest
    assert restored.evaluator.trades[0].timestamp >= history[-1].timestamp - span - timedelta(hours=7)
    everything = risk.evaluator  # the first manager saw every trade
    assert len(everything.trades) == len(history)
    end = history[-1].timestamp
    for hours in range(0, 80, 3):
        for asset in ("WETH", "WBTC"):
            for opening in (True, False):
                now = end + timedelta(hours=hours)
                expected = everything.blocking_lock(now, asset, opening)
                decision = restored.can_trade(asset, opening, now)
                assert decision.allowed == (expected is None)
                assert decision.rule == (expected.rule if expected else ""), (now, asset, opening)
    record = TradeRecord(end + timedelta(hours=5), "WETH", -30.0)
    assert restored.record_trade(record, "0xnext") == everything.record(record)  # the same new locks
