"""The closed bars' closes of each price series as one keeper process knows them, and each
strategy's signal on them: read in full once, then extended by the bars closed since, so
that a new bar reads the few rows it added, not the whole history.

A final bar (sealed from the feed's rounds, or from a price file) never changes. A bar
still folded from readings may: the next cycle can seal it from the rounds. So what is
kept of a series is split at its oldest provisional bar: the final bars before it are
kept, and that bar and everything after it is read again on the next bar.

Every user who runs one strategy with the same parameters on one series gets the one
computation per bar (keyed by the strategy's class and parameters, not its instance).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from keepers.persistence.store import Store
from strategies.base import Signal, Strategy


@dataclass(frozen=True)
class _Closes:
    """A series' closes before ``before``; the first ``final`` of them are final bars."""

    before: datetime
    closes: np.ndarray
    final: int
    final_until: datetime | None  # the start of the first bar that is not final (None: every bar is)


class ClosedSeries:
    """Per (series, timeframe), the closes of its closed bars and the signals computed on
    them for the newest bar; owned by one keeper process's context."""

    def __init__(self) -> None:
        self._closes: dict[tuple[str, int], _Closes] = {}
        self._signals: dict[tuple[str, int], tuple[datetime, dict[tuple, Signal]]] = {}

    def prepare(self, store: Store, series: Iterable[str], timeframe_seconds: int,
                before: datetime) -> dict[str, np.ndarray]:
        """The closes of each of ``series`` before ``before`` (the current bar), oldest first,
        with one store read for all that need one: from the kept part's end when a later
        bar asks, all of it the first time (or for an older bar than the one kept: a late
        caller, whose answer is not kept)."""
        answers, wanted = {}, {}
        for name in series:
            kept = self._closes.get((name, timeframe_seconds))
            if kept is not None and kept.before == before:
                answers[name] = kept.closes
            elif kept is not None and kept.before < before:
                wanted[name] = kept.final_until if kept.final_until is not None else kept.before
            else:
                wanted[name] = None
        for name, rows in (store.closes(wanted, timeframe_seconds, before) if wanted else {}).items():
            kept = self._closes.get((name, timeframe_seconds))
            head = kept.closes[:kept.final] if wanted[name] is not None else np.empty(0)
            closes = np.concatenate([head, np.array([close for _, close, _ in rows], dtype=np.float64)])
            closes.flags.writeable = False  # shared between callers
            first_provisional = next((index for index, (_, _, final) in enumerate(rows) if not final), None)
            if kept is None or kept.before < before:
                self._closes[(name, timeframe_seconds)] = _Closes(
                    before=before, closes=closes,
                    final=len(head) + (len(rows) if first_provisional is None else first_provisional),
                    final_until=None if first_provisional is None else rows[first_provisional][0])
            answers[name] = closes
        return answers

    def closes(self, store: Store, series: str, timeframe_seconds: int, before: datetime) -> np.ndarray:
        """Closes of the bars of ``series`` that start before ``before``, oldest first."""
        return self.prepare(store, [series], timeframe_seconds, before)[series]

    def signal(self, strategy: Strategy, store: Store, series: str, timeframe_seconds: int,
               before: datetime) -> Signal:
        """``strategy``'s signal on the closes before ``before``, computed once per bar for
        every strategy of the same class and parameters."""
        key = (series, timeframe_seconds)
        bar, computed = self._signals.get(key, (None, {}))
        if bar != before:
            computed = {}
            self._signals[key] = (before, computed)
        which = (type(strategy), strategy.params)
        if which not in computed:
            computed[which] = strategy.signal_now(self.closes(store, series, timeframe_seconds, before))
        return computed[which]
