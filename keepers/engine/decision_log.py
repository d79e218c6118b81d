"""A cycle's strategy decisions on their way to the store, written as late as is safe.

Before a cycle's first trade takes its first step in the journal, every decision of the
cycle is stored: those concluded already with their outcome, the others open (not yet
acted on). That is the write-ahead rule: a keeper that dies after it finds them open and
acts on them within their bar. A cycle whose decisions make no trade stores them all at
its end, each with its outcome, acted on at once: one write, and one the user's revision
does not count (it changes nothing a cycle reads of its user). A keeper that dies before
that write stored nothing of those decisions, and nothing irreversible came of them: the
next cycle decides the same bar again, on the same closes, to the same signal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from keepers.base.clock import now_utc
from keepers.persistence.store import SignalOutcome, Store
from keepers.persistence.tables import SignalRow
from strategies.base import Signal, Strategy


@dataclass(frozen=True)
class BarDecision:
    """A strategy's call on one closed bar of one token, before the user engine sizes it."""

    token: str
    strategy: Strategy
    bar_time: datetime
    signal: Signal
    recorded_before: bool  # stored by an earlier cycle that died before acting on it

    @property
    def key(self) -> tuple[str, str, datetime]:
        """(token, strategy name, bar time): one decision per user."""
        return self.token, self.strategy.name, self.bar_time


class DecisionLog:
    """One cycle's decisions of one user: which are stored, and what came of each."""

    def __init__(self, store: Store, user_id: str) -> None:
        self._store, self._user_id = store, user_id
        self._unstored: dict[tuple[str, str, datetime], BarDecision] = {}  # made by this cycle, not written yet
        self._concluded: dict[tuple[str, str, datetime], str] = {}  # outcomes of those, by key
        self._outcomes: list[SignalOutcome] = []  # of decisions stored open, to be written
        self._stored_open: set[tuple[str, str, datetime]] = set()  # keys this cycle stored open
        self._written = False  # the cycle's decisions are stored (before its first trade)
        self.stored: set[tuple[str, str]] = set()  # (token, strategy) of the decisions this cycle stored

    def add(self, decision: BarDecision) -> None:
        """A decision this cycle made (or one an earlier cycle stored and left open)."""
        if not decision.recorded_before:
            self._unstored[decision.key] = decision

    def expire(self, token: str, strategy: str, bar_time: datetime, reason: str) -> None:
        """An open decision of an earlier cycle whose bar has passed: settled with ``reason``."""
        self._outcomes.append(SignalOutcome(self._user_id, token, strategy, bar_time, reason))

    def before_trade(self, decision: BarDecision) -> bool:
        """Stores the cycle's decisions before ``decision``'s trade takes its first step;
        False when another keeper stored the bar's decision first (it acts on its own: this
        cycle does not)."""
        if not self._written:
            self._write()
        return decision.recorded_before or decision.key in self._stored_open

    def conclude(self, decision: BarDecision, outcome: str) -> None:
        """What came of ``decision`` (its trade's outcome, or why it made none)."""
        if decision.recorded_before or decision.key in self._stored_open:
            self._outcomes.append(SignalOutcome(self._user_id, *decision.key, outcome))
        elif decision.key in self._unstored:
            self._concluded[decision.key] = outcome
        # else another keeper stored this bar's decision first: its outcome is its own

    def close(self) -> None:
        """Writes what is left: the decisions not stored yet, with their outcomes, and the
        outcomes of those stored open (one transaction)."""
        self._write()

    def _write(self) -> None:
        rows = [self._row(decision, self._concluded.get(key)) for key, decision in self._unstored.items()]
        stored = self._store.record_decisions(rows, self._outcomes)
        self.stored |= stored
        self._stored_open |= {key for key in self._unstored
                              if key not in self._concluded and (key[0], key[1]) in stored}
        self._unstored, self._concluded, self._outcomes, self._written = {}, {}, [], True

    def _row(self, decision: BarDecision, outcome: str | None) -> SignalRow:
        signal = decision.signal
        return SignalRow(user_id=self._user_id, asset=decision.token, strategy=decision.strategy.name,
                         bar_time=decision.bar_time, action=signal.action.name, confidence=signal.confidence,
                         reason=signal.reason[:500],
                         indicators={k: (None if _is_nan(v) else v) for k, v in signal.indicators.items()},
                         created_at=now_utc(), acted=outcome is not None, outcome=outcome)


def _is_nan(value: object) -> bool:
    """An indicator not defined yet (its warm-up): stored as JSON null, not NaN."""
    return isinstance(value, float) and math.isnan(value)
