"""Runs users' cycles: once (for cron) or on a schedule (the `schedule` library).

Before a user's cycle the keeper takes that user's lease in the store (expiring) and
gives it back after the cycle, so two keepers never run one user at once, nobody waits
for a live keeper between its cycles, and a keeper that dies within a cycle loses the
user when the lease expires. A heartbeat row per keeper shows it is alive.
SIGINT and SIGTERM set a flag: the cycle under way finishes, then the keeper stops and
gives its leases back. A store that cannot be reached skips the cycle, not the keeper.
Whoever watches the keeper (metrics, notifications) is handed each finished cycle and
each heartbeat through ``on_cycle`` and ``on_beat``.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import schedule
from sqlalchemy.exc import OperationalError

from keepers.base.clock import now_utc
from keepers.engine.cycle import CycleResult, KeeperContext, run_cycle
from keepers.engine.pipeline import trades_in_flight
from keepers.persistence.engine import error_line
from keepers.settings.keeper import UserConfig


class Scheduler:
    """Runs the cycles of ``users`` in ``context``; ``report`` gets one line per cycle,
    each of ``on_cycle`` every cycle's result, each of ``on_beat`` every heartbeat's time."""

    def __init__(self, context: KeeperContext, users: Sequence[UserConfig], report: Callable[[str], None],
                 on_cycle: Sequence[Callable[[CycleResult], None]] = (),
                 on_beat: Sequence[Callable[[datetime], None]] = ()) -> None:
        self.context = context
        self.users = [user for user in users if user.enabled]
        self.report = report
        self.on_cycle = on_cycle
        self.on_beat = on_beat
        self.stopping = threading.Event()
        self.started_at = now_utc()
        self._cycle_numbers = {user.id: 0 for user in self.users}
        self._last_beat = -float("inf")

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM: finish the step under way, then stop."""
        # Not ``self.stop()`` in the handler itself: it runs in the main thread, which may
        # hold the stop event's lock at that moment (inside ``stopping.wait``), and the
        # event's lock is not reentrant: the keeper would hang for good (seen once in the
        # suite: a SIGTERMed keeper never exited). A thread of its own waits its turn.
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: threading.Thread(target=self.stop, daemon=True).start())

    def stop(self) -> None:
        """Asks the loop to stop after the cycle under way."""
        self.stopping.set()

    def run_once(self) -> list[CycleResult]:
        """One cycle of every enabled user (skipping users another keeper holds)."""
        results = []
        with trades_in_flight(self.context, self.report):  # max_trades_in_flight > 1: settled together at its end
            for user in self.users:
                if self.stopping.is_set():
                    break
                result = self.run_user(user)
                if result is not None:
                    results.append(result)
        return results

    def run_user(self, user: UserConfig, slot: int | None = None) -> CycleResult | None:
        """One cycle of ``user`` under its lease; None if another keeper holds it or the
        store cannot be reached (the keeper goes on: a later cycle reconciles whatever
        was sent meanwhile).

        The lease is taken for the cycle and given back after it: between two cycles
        nobody holds the user, so a second keeper, an operator's action or the replay's
        market mover gets the user at once instead of waiting for the lease to expire.
        With ``slot`` (a worker sharing the store with others, keepers/cluster/tasks.py)
        the cycle runs only if no worker ran that user's cycle of that slot before, and
        its round-robin number is the slot."""
        self.beat()
        store, owner = self.context.store, self.context.keeper_id
        try:
            now = now_utc()
            if not store.acquire_lease(user.id, owner, now,
                                       now + timedelta(seconds=self.context.config.settings.lease_seconds)):
                self.report(f"{user.id}: another keeper holds this user's lease; skipped")
                return None
            try:
                if slot is not None and not store.claim_cycle(user.id, slot, owner):
                    self.report(f"{user.id}: the cycle of slot {slot} ran before; skipped")
                    return None
                result = run_cycle(user, self.context, self._next_number(user) if slot is None else slot)
            finally:
                store.release_lease(user.id, owner)
        except OperationalError as error:
            self.report(f"{user.id}: store unavailable ({error_line(error)}); cycle skipped")
            return None
        self.report(result.line())
        for observe in self.on_cycle:
            observe(result)
        return result

    def _next_number(self, user: UserConfig) -> int:
        number = self._cycle_numbers[user.id]
        self._cycle_numbers[user.id] += 1
        return number

    def run_forever(self, idle_seconds: float = 1.0) -> None:
        """Every user every ``cycle_interval_seconds`` until stopped; runs each at once first."""
        interval = self.context.config.settings.cycle_interval_seconds
        jobs = schedule.Scheduler()
        for user in self.users:
            jobs.every(interval).seconds.do(self.run_user, user)
        with trades_in_flight(self.context, self.report):
            jobs.run_all()
        while not self.stopping.is_set():
            with trades_in_flight(self.context, self.report):  # the users due now send, then settle together
                jobs.run_pending()
            wait = jobs.idle_seconds
            self.stopping.wait(min(idle_seconds, max(wait or 0.0, 0.0)) or 0.05)
            self.beat()

    def close(self) -> None:
        """Gives back every lease this keeper holds (if the store can be reached: else
        they expire by themselves)."""
        try:
            for user in self.users:
                self.context.store.release_lease(user.id, self.context.keeper_id)
        except OperationalError as error:
            self.report(f"store unavailable ({error_line(error)}); leases left to expire")

    def beat(self, every_seconds: float = 10.0) -> None:
        """Records this keeper's heartbeat (at most once per ``every_seconds``)."""
        if time.monotonic() - self._last_beat < min(every_seconds, self.context.config.settings.cycle_interval_seconds):
            return
        self._last_beat = time.monotonic()
        try:
            self.context.store.beat(
                self.context.keeper_id, interval_seconds=self.context.config.settings.cycle_interval_seconds,
                pid=os.getpid(), host=socket.gethostname(), started_at=self.started_at,
            )
        except OperationalError:
            pass  # the store is unreachable: the cycles say so; a missed beat is what the dead-man alert is for
        for observe in self.on_beat:
            observe(now_utc())
