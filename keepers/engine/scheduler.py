"""Runs users' cycles: once (for cron) or on a schedule (the `schedule` library).

Users run in groups of ``users_per_read``: one chain read for the group (keepers/chain/
client.py), then each user's cycle on its part of it. Before a group's cycles the keeper
takes its users' leases in the store (expiring) and gives them back after the cycles, so
two keepers never run one user at once, nobody waits for a live keeper between its
cycles, and a keeper that dies within a cycle loses the users when the leases expire. A heartbeat row per keeper shows it is alive.
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
from keepers.engine.cycle import CycleResult, KeeperContext, run_cycle, snapshot_request
from keepers.engine.pipeline import trades_in_flight
from keepers.persistence.engine import error_line
from keepers.persistence.store import TakenUsers
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
        # How long one read serves its users: well within their leases (cycles that trade
        # wait for their blocks on a public chain, and the snapshot ages meanwhile).
        self.read_serves_seconds = context.config.settings.lease_seconds / 3
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
        """One cycle of every enabled user, ``users_per_read`` at a time (skipping users
        another keeper holds)."""
        results = []
        with trades_in_flight(self.context, self.report):  # max_trades_in_flight > 1: settled together at its end
            for group in self.groups():
                if self.stopping.is_set():
                    break
                results.extend(self.run_users(group))
        return results

    def groups(self) -> list[list[UserConfig]]:
        """The enabled users in groups of ``users_per_read``, in the users file's order."""
        size = self.context.config.settings.users_per_read
        return [self.users[start:start + size] for start in range(0, len(self.users), size)]

    def run_users(self, users: Sequence[UserConfig], slot: int | None = None) -> list[CycleResult]:
        """One cycle of each of ``users`` under its lease, all on one chain read; the users
        another keeper holds are skipped (and cost the read nothing), and so is everyone
        if the store cannot be reached (the keeper goes on: a later cycle reconciles
        whatever was sent meanwhile).

        The leases are taken together, in one store transaction, for the cycles and given
        back after them, in another, and the cycles' records are written together, in a
        third: between two cycles nobody holds a user, so a second keeper, an operator's
        action or the replay's market mover gets the user at once instead of waiting for
        the lease to expire. With ``slot`` (a worker sharing the store with others,
        keepers/cluster/tasks.py) a user's cycle runs only if no worker ran that user's
        cycle of that slot before (claimed with the lease), and its round-robin number is
        the slot; a keeper asked to stop finishes the cycle under way and gives back the
        claims of the users it did not run with their leases."""
        self.beat()
        store, owner = self.context.store, self.context.keeper_id
        try:
            taken = self._lease([user.id for user in users], slot)
            for user_id in taken.held:
                self.report(f"{user_id}: another keeper holds this user's lease; skipped")
            for user_id in taken.ran_before:
                self.report(f"{user_id}: the cycle of slot {slot} ran before; skipped")
            leased = set(taken.users)
            chosen = [user for user in users if user.id in leased]
            records: list = []
            results: list[CycleResult] = []
            try:
                self._cycles(chosen, slot, records, results)
                store.add_cycles(records)
            finally:
                ran = {result.user_id for result in results}
                store.release_leases([user.id for user in chosen], owner, slot=slot,
                                     not_run=[user.id for user in chosen if user.id not in ran])
        except OperationalError as error:
            self.report(f"{_named([user.id for user in users])}: store unavailable ({error_line(error)}); "
                        f"cycle{'s' if len(users) > 1 else ''} skipped")
            return []
        for result in results:
            self.report(result.line())
            for observe in self.on_cycle:
                observe(result)
        return results

    def _lease(self, user_ids: list[str], slot: int | None = None) -> TakenUsers:
        now = now_utc()
        return self.context.store.acquire_leases(
            user_ids, self.context.keeper_id, now,
            now + timedelta(seconds=self.context.config.settings.lease_seconds), slot=slot)

    def _cycles(self, users: list[UserConfig], slot: int | None, records: list, results: list[CycleResult]) -> None:
        """Each user's cycle on a read of them all, its result added to ``results``. A read
        serves its users for ``read_serves_seconds`` at most: past that, the users still to
        run are read again, their leases renewed first."""
        context, first_read = self.context, True
        while users and not self.stopping.is_set():
            if not first_read:
                renewed = set(self._lease([user.id for user in users]).users)
                for user in users:
                    if user.id not in renewed:
                        self.report(f"{user.id}: its lease was lost while the users before it ran; skipped")
                users = [user for user in users if user.id in renewed]
            first_read, deadline = False, time.monotonic() + self.read_serves_seconds
            calls_before = context.client.rpc_calls
            try:
                snapshots = context.client.snapshots([snapshot_request(user, context) for user in users])
            except Exception as error:  # noqa: BLE001 - the node unreachable: each cycle records it
                snapshots = [error] * len(users)
            read_calls = context.client.rpc_calls - calls_before
            for index, (user, snapshot) in enumerate(zip(users, snapshots, strict=True)):
                if self.stopping.is_set() or (index and time.monotonic() >= deadline):
                    users = users[index:]
                    break
                number = self._next_number(user) if slot is None else slot
                result = run_cycle(user, context, number, snapshot, records)
                if index == 0:  # the read's round trips are counted once, with the first cycle it served
                    result.rpc_calls += read_calls
                    records[-1][0].rpc_calls += read_calls
                results.append(result)
            else:
                users = []

    def _next_number(self, user: UserConfig) -> int:
        number = self._cycle_numbers[user.id]
        self._cycle_numbers[user.id] += 1
        return number

    def run_forever(self, idle_seconds: float = 1.0) -> None:
        """Every user every ``cycle_interval_seconds`` until stopped; runs each at once first."""
        interval = self.context.config.settings.cycle_interval_seconds
        jobs = schedule.Scheduler()
        for group in self.groups():
            jobs.every(interval).seconds.do(self.run_users, group)
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
            self.context.store.release_leases([user.id for user in self.users], self.context.keeper_id)
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


def _named(user_ids: list[str]) -> str:
    """Who a line is about: a few users by name, more by the first and a count."""
    return ", ".join(user_ids) if len(user_ids) <= 3 else f"{user_ids[0]} and {len(user_ids) - 1} more users"
