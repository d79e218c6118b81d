"""The pure risk rules and the in-memory evaluator, with the clock moved by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from strategies.risk import (
    GLOBAL,
    KILL_SWITCH,
    ConsecutiveFailures,
    Cooldown,
    DailyLossLimit,
    Lock,
    LossStreak,
    MaxTradesPerWindow,
    RiskEvaluator,
    RiskLimits,
    RiskRule,
    TradeRecord,
)

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


def trade(hours: float, asset: str = "ETH", pnl: float | None = None, success: bool = True) -> TradeRecord:
    return TradeRecord(T0 + hours * H, asset, pnl, success)


def test_cooldown_locks_until_the_period_after_the_last_trade():
    rule = Cooldown(timedelta(hours=4))
    trades = [trade(0), trade(1)]
    assert rule.check(T0 + 2 * H, trades) == Lock(T0 + 5 * H, rule.check(T0 + 2 * H, trades).reason)
    assert rule.check(T0 + 5 * H, trades) is None  # the end is exclusive
    assert rule.check(T0, []) is None
    assert rule.check(T0 + 2 * H, [trade(1, success=False)]) is None  # failures are not trades


def test_max_trades_frees_a_slot_when_the_oldest_leaves_the_window():
    rule = MaxTradesPerWindow(3, timedelta(hours=10))
    trades = [trade(0), trade(2), trade(4), trade(5)]
    lock = rule.check(T0 + 5 * H, trades)
    # Four trades in (T0 - 5h, T0 + 5h]; the third-newest (T0 + 2h) leaves at T0 + 12h.
    assert lock.until == T0 + 12 * H
    assert "4 trades" in lock.reason
    assert rule.check(T0 + 5 * H, trades[:2]) is None
    assert rule.check(T0 + 14.5 * H, trades) is None  # only T0+5h is still in the window


def test_daily_loss_limit_sums_todays_realised_pnl_and_locks_to_midnight():
    rule = DailyLossLimit(100.0)
    yesterday = TradeRecord(T0 - timedelta(days=1), "ETH", -500.0, True)
    trades = [yesterday, trade(0, pnl=-60.0), trade(1, pnl=None), trade(2, "BTC", pnl=20.0), trade(3, pnl=-60.0)]
    lock = rule.check(T0 + 3 * H, trades)
    assert lock.until == datetime(2024, 3, 2, tzinfo=timezone.utc)
    assert "lost 100.00" in lock.reason
    assert rule.check(T0 + 2 * H, trades[:4]) is None  # -40 so far today
    assert rule.check(T0 + 3 * H, trades[:-1] + [trade(3, pnl=-59.99)]) is None


def test_loss_streak_counts_closing_trades_only():
    rule = LossStreak(2, timedelta(hours=6))
    trades = [trade(0, pnl=5.0), trade(1, pnl=-1.0), trade(2, pnl=None), trade(3, pnl=-2.0)]
    lock = rule.check(T0 + 3 * H, trades)
    assert lock.until == T0 + 9 * H
    assert rule.check(T0 + 9 * H, trades) is None
    assert rule.check(T0 + 3 * H, trades[:2] + [trade(3, pnl=0.0)]) is None  # break-even ends it


def test_consecutive_failures_is_a_kill_switch():
    rule = ConsecutiveFailures(3)
    failures = [trade(h, success=False) for h in range(3)]
    lock = rule.check(T0 + 3 * H, failures)
    assert lock.until is None and lock.is_kill_switch
    assert rule.check(T0 + 3 * H, failures[:2]) is None
    assert rule.check(T0 + 3 * H, [failures[0], trade(1), *failures[1:]]) is None


def test_every_rule_has_a_name_and_a_one_line_description():
    rules = RiskLimits().rules()
    assert [r.name for r in rules] == ["cooldown", "max_trades", "daily_loss", "loss_streak", "consecutive_failures"]
    for rule in rules:
        assert isinstance(rule, RiskRule)
        assert rule.description and "\n" not in rule.description


def test_limits_turn_rules_off_and_reject_bad_values():
    assert RiskLimits(cooldown=None, max_trades=None, max_daily_loss_quote=None, max_losses=None,
                      max_failures=None).rules() == []
    assert RiskLimits(cooldown="2d").cooldown == timedelta(days=2)
    with pytest.raises(ValidationError):
        RiskLimits(max_trades=0)
    with pytest.raises(ValidationError):
        RiskLimits(max_tardes=3)


def test_timed_lock_blocks_entries_on_its_asset_only():
    lock = Lock(T0 + H, "test", "cooldown", "ETH")
    assert lock.blocks(T0, "ETH", opening=True)
    assert not lock.blocks(T0, "ETH", opening=False)  # exits are never held open
    assert not lock.blocks(T0, "BTC", opening=True)
    assert not lock.blocks(T0 + H, "ETH", opening=True)


def test_kill_switch_blocks_everything():
    lock = Lock(None, "stop", KILL_SWITCH, GLOBAL)
    assert lock.blocks(T0 + 1000 * H, "BTC", opening=True)
    assert lock.blocks(T0, "ETH", opening=False)


def test_evaluator_applies_per_asset_and_global_rules():
    evaluator = RiskEvaluator([Cooldown(2 * H), DailyLossLimit(50.0)])
    assert evaluator.record(trade(0, "ETH")) == [
        Lock(T0 + 2 * H, evaluator.locks[0].reason, "cooldown", "ETH")
    ]
    assert evaluator.blocking_lock(T0 + H, "ETH", opening=True).rule == "cooldown"
    assert evaluator.blocking_lock(T0 + H, "BTC", opening=True) is None
    assert evaluator.blocking_lock(T0 + H, "ETH", opening=False) is None
    evaluator.record(trade(3, "BTC", pnl=-60.0))
    lock = evaluator.blocking_lock(T0 + 4 * H, "SOL", opening=True)
    assert (lock.rule, lock.asset) == ("daily_loss", GLOBAL)
    assert evaluator.blocking_lock(T0 + 15 * H, "SOL", opening=True) is None  # next UTC day


def test_evaluator_cooldown_only_sees_the_assets_own_trades():
    evaluator = RiskEvaluator([Cooldown(2 * H)])
    evaluator.record(trade(0, "ETH"))
    evaluator.record(trade(1.5, "BTC"))
    assert evaluator.blocking_lock(T0 + 2.5 * H, "ETH", opening=True) is None
    assert evaluator.blocking_lock(T0 + 2.5 * H, "BTC", opening=True) is not None


def test_kill_switches_come_first_and_clear_by_hand():
    evaluator = RiskEvaluator([Cooldown(2 * H), ConsecutiveFailures(2)])
    evaluator.record(trade(0))
    evaluator.record(trade(0.5, success=False))
    evaluator.record(trade(1, success=False))
    assert evaluator.blocking_lock(T0 + 1.5 * H, "ETH", opening=True).rule == "consecutive_failures"
    assert evaluator.blocking_lock(T0 + 100 * H, "BTC", opening=False).rule == "consecutive_failures"
    evaluator.clear("consecutive_failures", T0 + 2 * H)
    assert evaluator.blocking_lock(T0 + 3 * H, "ETH", opening=True) is None
    # The failures before the clear no longer count: one new failure is not two.
    evaluator.record(trade(4, success=False))
    assert evaluator.blocking_lock(T0 + 4 * H, "ETH", opening=False) is None
    evaluator.record(trade(5, success=False))
    assert evaluator.blocking_lock(T0 + 5 * H, "ETH", opening=False).is_kill_switch


def test_manual_kill_switch():
    evaluator = RiskEvaluator([])
    lock = evaluator.engage_kill_switch(T0, "operator stop")
    assert lock.rule == KILL_SWITCH and "operator stop" in lock.reason
    assert evaluator.blocking_lock(T0 + 1000 * H, "ETH", opening=False) == lock
    evaluator.clear(KILL_SWITCH, T0 + H)
    assert evaluator.blocking_lock(T0 + 2 * H, "ETH", opening=True) is None


def test_evaluator_takes_trades_in_time_order_only():
    evaluator = RiskEvaluator([Cooldown(H)])
    evaluator.record(trade(2))
    with pytest.raises(ValueError, match="older than the last one"):
        evaluator.record(trade(1))


def test_windowed_rules_ignore_trades_after_now():
    trades = [trade(0, pnl=-80.0), trade(5, pnl=-80.0)]
    assert DailyLossLimit(100.0).check(T0 + 1 * H, trades) is None
    assert MaxTradesPerWindow(2, 10 * H).check(T0 + 1 * H, trades) is None
    midnight = TradeRecord(datetime(2024, 3, 2, tzinfo=timezone.utc), "ETH", -150.0, True)
    assert DailyLossLimit(100.0).check(midnight.timestamp, [*trades, midnight]).until == datetime(2024, 3, 3, tzinfo=timezone.utc)


def test_evaluator_restores_persisted_state_without_rerunning_rules():
    first = RiskEvaluator([ConsecutiveFailures(2), Cooldown(2 * H)])
    for hours in (0, 1, 2):
        first.record(trade(hours, success=False))
    first.record(trade(3))
    first.clear("consecutive_failures", T0 + 4 * H)
    restored = RiskEvaluator(first.rules, first.trades, first.locks, first.cleared_at)
    assert restored.locks == first.locks and [lock.rule for lock in restored.locks] == ["cooldown"]
    assert restored.blocking_lock(T0 + 4 * H, "ETH", opening=True).rule == "cooldown"
    restored.record(trade(5, success=False))  # the failures before the clear stay forgotten
    assert restored.blocking_lock(T0 + 5 * H, "ETH", opening=False) is None
