"""One worker of the distributed form (keepers/cluster/tasks.py): the cycle task it runs, the
keeper account it alone signs with, and its start on a store other workers share.

A keeper account sends from one process at a time (two would clash on nonces), so a
worker holds its account's lease in the store (``account:<address>``) for as long as
it runs, renewed with its heartbeat; a second worker started with the same account is
refused with the fix. A worker that dies loses that lease when it expires, like its
users' leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from datetime import timedelta

from taskiq_redis import RedisStreamBroker

from keepers.base.clock import now_utc
from keepers.base.errors import SentinelError
from keepers.cluster.tasks import current_slot, work
from keepers.engine.pipeline import trades_in_flight
from keepers.engine.scheduler import Scheduler
from keepers.persistence.store import Store

ACCOUNT_LEASE_PREFIX = "account:"
# How often an idle worker marks itself alive and renews its account's lease.
KEEP_ALIVE_SECONDS = 10.0


def account_lease_key(address: str) -> str:
    """The lease key of a keeper account."""
    return ACCOUNT_LEASE_PREFIX + address


def hold_account(store: Store, address: str, keeper_id: str, lease_seconds: int) -> bool:
    """Takes or renews this worker's lease on its keeper account; False if another holds it."""
    now = now_utc()
    return store.acquire_lease(account_lease_key(address), keeper_id, now, now + timedelta(seconds=lease_seconds))


def claim_account(store: Store, address: str, keeper_id: str, lease_seconds: int) -> None:
    """Makes this worker the only sender of ``address``, or says which worker is."""
    if hold_account(store, address, keeper_id, lease_seconds):
        return
    holder = next((lease for lease in store.leases() if lease.user_id == account_lease_key(address)), None)
    who = f"worker {holder.owner} until {holder.expires_at:%H:%M:%S} UTC" if holder else "another worker"
    raise SentinelError(
        f"keeper_account: {address} is in use by {who}; give each worker its own keeper account "
        "(SENTINEL_KEEPER_ACCOUNT; each allowed on the Executor: `ape run deploy --keeper A --keeper B ...`)")


class Worker:
    """Runs the cycle tasks the broker delivers, through a ``Scheduler`` (leases, claims,
    heartbeats, watchers)."""

    def __init__(self, scheduler: Scheduler, account_address: str, report: Callable[[str], None]) -> None:
        self.scheduler = scheduler
        self.account_address = account_address
        self.report = report
        self.users = {user.id: user for user in scheduler.users}
        self.interval = scheduler.context.config.settings.cycle_interval_seconds

    def run_cycle_task(self, user_ids: list[str], slot: int) -> str:
        """The task: one cycle of each of ``user_ids`` for scheduling slot ``slot``, on one
        chain read; returns what happened."""
        for user_id in user_ids:
            if user_id not in self.users:
                self.report(f"{user_id}: not an enabled user of this worker's users file; dropped from its task")
        users = [self.users[user_id] for user_id in user_ids if user_id in self.users]
        newest = current_slot(self.interval)
        if slot < newest - 1:  # late by more than one interval (a backlog after an outage): the next one is due
            self.report(f"{len(users)} user(s) from {user_ids[0]}: the task of slot {slot} is stale "
                        f"(now slot {newest}); dropped")
            return "stale"
        # max_trades_in_flight above 1: the task's trades are sent at consecutive nonces and settled together at its end.
        with trades_in_flight(self.scheduler.context, self.report):
            ran = len(self.scheduler.run_users(users, slot=slot)) if users else 0
        return f"ran {ran} of {len(user_ids)}"

    def keep_alive(self) -> None:
        """Marks the worker alive and renews its account's lease (between tasks too)."""
        self.scheduler.beat()
        context = self.scheduler.context
        if not hold_account(context.store, self.account_address, context.keeper_id,
                            context.config.settings.lease_seconds):
            self.report(f"keeper account {self.account_address} was taken by another worker; stopping")
            self.scheduler.stop()

    async def keep_alive_until_stopped(self) -> None:
        """``keep_alive`` every KEEP_ALIVE_SECONDS (a third of the lease if shorter), off the
        event loop (the store is synchronous); returns once the worker is asked to stop."""
        period = min(KEEP_ALIVE_SECONDS, self.scheduler.context.config.settings.lease_seconds / 3)
        while not self.scheduler.stopping.is_set():
            await asyncio.to_thread(self.keep_alive)
            await asyncio.to_thread(self.scheduler.stopping.wait, period)

    def serve(self, broker: RedisStreamBroker) -> None:
        """Runs the broker's cycle tasks until SIGINT/SIGTERM (or the account is taken by
        another worker): the cycle under way finishes first."""
        asyncio.run(self._serve(broker))

    async def _serve(self, broker: RedisStreamBroker) -> None:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, self.scheduler.stop)
        tasks = asyncio.create_task(work(broker, self.run_cycle_task))
        await self.keep_alive_until_stopped()
        tasks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks

    def close(self) -> None:
        """Gives back the users' leases and the account's."""
        self.scheduler.close()
        self.scheduler.context.store.release_lease(account_lease_key(self.account_address),
                                                  self.scheduler.context.keeper_id)
