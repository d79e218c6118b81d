"""Each user's state as a keeper process last read it, reused while the store says nothing
of it changed: the steady cycle (every bar decided, nothing in flight) then reads two
integers of the store instead of the user's trades, sleeves, decisions and risk state.

The store counts the writes to a user's state with triggers (``UserRows.revision``),
whoever writes them: this keeper, another worker that held the user's lease, the status
page's controls, the command line (a decision stored with its outcome at once is not
counted: it changes nothing read here). Rows read at the revision the store still shows
are what a fresh read would give. Only a quiet state is kept (``UserRows.quiet``): a state
with work in progress changes within the cycle and is read afresh each time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from keepers.persistence.store import Store, UserRows


@dataclass
class _Kept:
    """One user's rows, the arguments they were read with, and what was found settled then."""

    rows: UserRows
    read_with: tuple[timedelta, int, datetime]  # (span, newest, since) of Store.user_rows
    decided_bar: datetime | None = None  # the bar on which ``decided`` pairs were found final and decided
    decided: set[tuple[str, str]] = field(default_factory=set)  # (token, strategy)


class KeptUserState:
    """Per user, the quiet rows of their last cycle and the (token, strategy) pairs known
    decided on their newest closed bar; owned by one keeper process's context."""

    def __init__(self) -> None:
        self._kept: dict[str, _Kept] = {}

    def user_rows(self, store: Store, user_id: str, span: timedelta, newest: int, *, since: datetime) -> UserRows:
        """``Store.user_rows`` of the user, from memory when the store's revision of the user
        (and of the global locks) has not moved since they were read with the same memory
        and the same or an earlier ``since``: one transaction either way, and only the
        revision read when it stands still."""
        kept = self._kept.get(user_id)
        read_with = (span, newest, since)
        known = kept.rows.revision if kept is not None and _covers(kept.read_with, read_with) else None
        rows = store.user_rows(user_id, span, newest, since=since, unless_revision=known)  # one transaction
        if rows is None:
            return kept.rows
        if rows.quiet:
            self._kept[user_id] = _Kept(rows, read_with)
        else:
            self._kept.pop(user_id, None)
        return rows

    def settled(self, user_id: str, bar_time: datetime, pairs: set[tuple[str, str]]) -> bool:
        """Whether every one of ``pairs`` was found decided on ``bar_time``, its bar final,
        at the revision of the user's kept rows (checked by ``user_rows`` in this cycle)."""
        kept = self._kept.get(user_id)
        return kept is not None and kept.decided_bar == bar_time and pairs <= kept.decided

    def note_settled(self, user_id: str, bar_time: datetime, pairs: set[tuple[str, str]]) -> None:
        """Remembers ``pairs`` found decided on ``bar_time`` with their bars final (in the
        kept rows' entry: a write to the user's state forgets them with the rows)."""
        kept = self._kept.get(user_id)
        if kept is None:
            return
        if kept.decided_bar != bar_time:
            kept.decided_bar, kept.decided = bar_time, set()
        kept.decided |= pairs


def _covers(kept: tuple[timedelta, int, datetime], wanted: tuple[timedelta, int, datetime]) -> bool:
    """Whether rows read with ``kept`` (span, newest, since) serve a read with ``wanted``.

    A later ``since`` (the next bar) reads a window of risk trades that only shrinks, so the
    rows read from an earlier one hold it; the trades they hold besides are older than any
    rule can see from the later bar (``RiskLimits.memory``), and a quiet state has no open
    decision or unfinished trade for ``since`` to select.
    """
    return kept[:2] == wanted[:2] and kept[2] <= wanted[2]
