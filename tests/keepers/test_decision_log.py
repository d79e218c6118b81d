"""A cycle's decisions on their way to the store (issue 24): stored with their outcomes in
one write when none trades, every one of them before the first trade's first step, and
another keeper's decision of the same bar never acted on or overwritten. On SQLite and on
a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keepers.engine.decision_log import BarDecision, DecisionLog
from keepers.persistence.tables import SignalRow
from strategies.base import Action, Signal
from strategies.bollinger import BollingerStrategy
from strategies.macd import MacdStrategy

BAR = datetime(2024, 5, 1, tzinfo=UTC)
SPAN = timedelta(days=1)


def decision(token: str, strategy, action: Action = Action.HOLD, *, recorded_before: bool = False) -> BarDecision:
    return BarDecision(token, strategy, BAR, Signal(action, 0.5, f"{action.name} on {token}", {"band": float("nan")}),
                       recorded_before=recorded_before)


def counting_writes(store) -> list[tuple[int, int]]:
    writes, record = [], store.record_decisions
    store.record_decisions = lambda rows, outcomes=(): writes.append((len(rows), len(outcomes))) or record(
        rows, outcomes)
    return writes


def test_decisions_that_trade_nothing_are_stored_with_their_outcomes_in_one_write(store):
    writes = counting_writes(store)
    before = store.user_rows("alice", SPAN, 3, since=BAR).revision
    log = DecisionLog(store, "alice")
    hold, sell = decision("WETH", BollingerStrategy()), decision("WETH", MacdStrategy(), Action.SELL)
    for made in (hold, sell):
        log.add(made)
    log.conclude(hold, "no trade: HOLD with none held")
    log.conclude(sell, "no trade: SELL with none held")
    assert writes == []  # nothing before the end: nothing irreversible came of them
    log.close()
    assert writes == [(2, 0)] and log.stored == {("WETH", "bollinger"), ("WETH", "macd")}
    rows = {row.strategy: row for row in store.signals("alice")}
    assert rows["macd"].acted and rows["macd"].outcome == "no trade: SELL with none held"
    assert rows["bollinger"].indicators == {"band": None}
    assert store.user_rows("alice", SPAN, 3, since=BAR).revision == before  # nothing a cycle reads changed


def test_before_a_trade_every_decision_of_the_cycle_is_stored_and_the_outcomes_follow_at_the_end(store):
    writes = counting_writes(store)
    log = DecisionLog(store, "alice")
    first, buy, last = (decision("WETH", BollingerStrategy()), decision("WBTC", BollingerStrategy(), Action.BUY),
                        decision("LTC", MacdStrategy()))
    expired = ("WETH", "macd", BAR - SPAN)
    store.record_decisions([SignalRow(user_id="alice", asset=expired[0], strategy=expired[1], bar_time=expired[2],
                                      action="BUY", confidence=1.0, reason="r", indicators={}, created_at=BAR,
                                      acted=False)])
    writes.clear()
    for made in (first, buy, last):
        log.add(made)
    log.expire(*expired, "expired: not acted on before the bar closed")
    log.conclude(first, "no trade: HOLD with none held")
    assert log.before_trade(buy)
    assert writes == [(3, 1)]  # every decision (one concluded, two open) and the expiry, before the trade
    assert {(row.asset, row.acted) for row in store.unsettled_signals("alice")} == {("WBTC", False), ("LTC", False)}
    log.conclude(buy, "BUY trade 0x01 mined")
    log.conclude(last, "no trade: HOLD with none held")
    log.close()
    assert writes[1] == (0, 2) and store.unsettled_signals("alice") == []
    outcomes = {(row.asset, row.strategy, row.bar_time): row.outcome for row in store.signals("alice")}
    assert outcomes[("WBTC", "bollinger", BAR)] == "BUY trade 0x01 mined"
    assert outcomes[expired] == "expired: not acted on before the bar closed"


def test_a_bar_another_keeper_decided_first_is_left_to_it(store):
    other = DecisionLog(store, "alice")  # another keeper, which held the user a moment before
    theirs = decision("WETH", BollingerStrategy(), Action.BUY)
    other.add(theirs)
    assert other.before_trade(theirs)
    log = DecisionLog(store, "alice")
    mine_trading, mine_idle = decision("WETH", BollingerStrategy(), Action.BUY), decision("WETH", MacdStrategy())
    log.add(mine_trading)
    log.add(mine_idle)
    assert not log.before_trade(mine_trading)  # its trade is the other keeper's to make
    log.conclude(mine_trading, "a verdict this keeper must not store")
    log.conclude(mine_idle, "no trade: HOLD with none held")
    log.close()
    assert log.stored == {("WETH", "macd")}
    (open_decision,) = store.unsettled_signals("alice")
    assert (open_decision.strategy, open_decision.outcome) == ("bollinger", None)  # still the other keeper's
