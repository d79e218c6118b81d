"""Many users' trades in flight at once from one keeper account: a batch of cycles
whose trades are sent without waiting, then settled together.

Waiting for each receipt before the next trade caps one keeper account at about one
trade per block. With ``max_trades_in_flight`` above 1 the scheduler runs the cycles due
together inside ``trades_in_flight``: the journal only sends each trade (consecutive
nonces from the sender's one counter, each row stored sent with its hash and nonce
before broadcast), and the trades are settled together at the batch's end, or as soon
as ``max_trades_in_flight`` of them wait. A decision whose trade is in flight stays open
until its trade settles, then is marked acted on with what came of it; a crash in
between leaves the decision open and the row sent, so the next start (or cycle) finds
the transaction by its stored hash and settles it, or, if nothing reached the chain,
acts on the decision again within its bar under the same trade id (the Executor
refuses a used one: nothing executes twice).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta

from keepers.base.clock import now_utc
from keepers.engine.checkpoints import checkpoint
from keepers.engine.cycle import KeeperContext
from keepers.engine.journal import InFlight
from keepers.persistence.store import SignalOutcome
from keepers.persistence.tables import SENT, TradeRow
from strategies.exits import EXIT_STRATEGY


@contextlib.contextmanager
def trades_in_flight(context: KeeperContext, report: Callable[[str], None]) -> Iterator[None]:
    """The cycles run inside send their trades and leave them in flight; they are settled
    when ``max_trades_in_flight`` wait and when the block ends. With a limit of 1: nothing
    changes (each trade is waited for in its cycle)."""
    limit = context.config.settings.max_trades_in_flight
    if limit <= 1:
        yield
        return

    def settle_full(flights: list[InFlight]) -> list[TradeRow]:  # in the newest one's cycle: its user keeps its lease
        return settle_in_flight(context, flights, report, running_user=flights[-1].row.user_id)

    with context.journal.batch(limit, settle_full) as flights:
        try:
            yield
        finally:
            settle_in_flight(context, flights, report)


def settle_in_flight(context: KeeperContext, flights: list[InFlight], report: Callable[[str], None],
                     running_user: str | None = None) -> list[TradeRow]:
    """Settles ``flights`` together under their users' leases (a user another keeper took
    meanwhile is left to it: its cycles reconcile the trade) and marks each settled
    trade's decision acted on; empties the list and returns the rows it settled. The
    lease of ``running_user`` (whose cycle is under way) stays taken. A failure (the node
    or the store unreachable) is reported, not raised: it happens outside any cycle, and
    the trades left sent are reconciled by their users' next cycles."""
    if not flights:
        return []
    checkpoint("after_batch_sent")
    store, owner = context.store, context.keeper_id
    held: set[str] = set()
    try:
        now = now_utc()
        until = now + timedelta(seconds=context.config.settings.lease_seconds)
        held = set(store.acquire_leases([flight.row.user_id for flight in flights], owner, now, until).users)
        still_sent = {row.trade_id for row in store.trades(statuses=[SENT])}  # not settled by another keeper
        mine = [flight for flight in flights if flight.row.user_id in held and flight.row.trade_id in still_sent]
        settled = context.journal.settle(mine)
        # A protective exit answers no decision. An operator's exit shares its (asset, strategy,
        # bar) with a decision of the strategy that made no trade (one trade id per bar
        # otherwise): it gets the outcome.
        store.record_decisions([], [
            SignalOutcome(row.user_id, row.asset, row.strategy, row.bar_time,
                          f"{row.side} trade {row.trade_id} {row.status}")
            for row in settled if row.status != SENT and row.strategy != EXIT_STRATEGY])
        report(_summary(settled, len(flights) - len(mine)))
        return settled
    except Exception as error:  # noqa: BLE001 - reported; the rows stay sent for the next cycles' reconcile
        report(f"trades in flight not settled ({type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}); "
               "their users' next cycles reconcile them")
        return []
    finally:
        with contextlib.suppress(Exception):  # an unreachable store: the leases expire by themselves
            store.release_leases(sorted(held - {running_user}), owner)
        flights.clear()


def _summary(settled: Sequence[TradeRow], left: int) -> str:
    statuses = Counter(row.status for row in settled)
    text = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
    return f"trades in flight settled together: {text or 'none'}" + (
        f"; {left} left to the keeper now holding their user" if left else "")
