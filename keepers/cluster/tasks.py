"""The distributed form: users' cycles as TaskIQ tasks on Redis, run by workers that
share one PostgreSQL store.

    ape run keeper dispatch   one process: every cycle_interval_seconds, one task per
                              group of users_per_read enabled users (TaskIQ's scheduler,
                              an interval schedule per group), stamped with its
                              scheduling slot
    ape run keeper worker     N processes, each with its own keeper account: take the
                              tasks from the Redis stream and run each group's cycles
                              on one chain read

The broker is taskiq-redis's ``RedisStreamBroker`` (a Redis stream with a consumer
group): a task is acknowledged only after its cycles ran, and one left unacknowledged
by a worker that died is claimed by another after ``redeliver_after_seconds``. What
keeps a cycle single is the store, not the broker: the user's lease (one worker on a
user at a time, expiring when its worker dies) and a claim row per (user, slot) (a
task delivered twice, or sent by a second dispatcher, runs once).

A task carries a group of users, not one: the group is what one chain read serves, so
the read's cost is shared by the dispatcher's grouping, with no batching in the worker
(TaskIQ hands a receiver one message at a time and acknowledges it after its function
returns; gathering several messages before a read would need a window of waiting and
acknowledgements held across tasks). A worker that dies with a task leaves the whole
group to be redelivered; the leases keep each user single meanwhile.

Silverback (Ape's bot runtime, also on TaskIQ) was the first choice; it is not used
because its tasks are bound to its own triggers (blocks, events, cron by the minute)
and receive no arguments, so a per-user fan-out across workers would have to go
around it, and a bot signs with one account while each worker here needs its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from taskiq import ScheduledTask, ScheduleSource, TaskiqScheduler
from taskiq.api import run_receiver_task, run_scheduler_task
from taskiq.exceptions import SendTaskError
from taskiq_redis import RedisStreamBroker

CYCLE_TASK = "sentinel.user_cycles"  # a group of users' cycles on one read
STREAM = "sentinel:cycles"
CONSUMER_GROUP = "sentinel-workers"
# One interval's burst is one message per group of users; trimming far above that keeps Redis's
# memory bounded without dropping a task a worker has not taken yet.
STREAM_MAX_LENGTH = 200_000
# Network calls to Redis give up after this long (a hung connection never blocks a worker for good).
REDIS_TIMEOUT_SECONDS = 10


def current_slot(interval_seconds: int, now: float | None = None) -> int:
    """The scheduling slot of ``now``: which cycle_interval_seconds-long period since the epoch."""
    return int((time.time() if now is None else now) // interval_seconds)


def make_broker(redis_url: str, *, redeliver_after_seconds: int) -> RedisStreamBroker:
    """The broker every dispatcher and worker of one deployment shares."""
    return RedisStreamBroker(
        redis_url, queue_name=STREAM, consumer_group_name=CONSUMER_GROUP,
        consumer_id="0",  # a group created after the first tasks were sent still gets them
        maxlen=STREAM_MAX_LENGTH, idle_timeout=redeliver_after_seconds * 1000,
        # a worker killed while it held the claim-lock of unacknowledged tasks must not hold it forever
        unacknowledged_lock_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        # TaskIQ's receiver starts listening again at once after an error; while Redis is
        # down, each attempt backs off inside redis-py (0.1 s doubling to 2 s: ~4 s an attempt).
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=5),
    )


def user_groups(user_ids: Sequence[str], users_per_task: int) -> list[list[str]]:
    """The users in groups of ``users_per_task`` (the last one shorter), in order."""
    return [list(user_ids[start:start + users_per_task]) for start in range(0, len(user_ids), users_per_task)]


class UserCycleSchedule(ScheduleSource):
    """TaskIQ's schedule source for the users: one interval schedule per group of
    ``users_per_task`` users, each task stamped with its slot as it is sent."""

    def __init__(self, user_ids: Sequence[str], interval_seconds: int, users_per_task: int) -> None:
        self.groups = user_groups(user_ids, users_per_task)
        self.interval_seconds = interval_seconds

    async def get_schedules(self) -> list[ScheduledTask]:
        """One schedule per group (named by its first user), every interval."""
        return [ScheduledTask(task_name=CYCLE_TASK, labels={}, args=[group], kwargs={},
                              schedule_id=f"cycles-{group[0]}", interval=self.interval_seconds)
                for group in self.groups]

    def pre_send(self, task: ScheduledTask) -> None:
        """Stamps the task with the slot it is sent in: the key that makes its cycle single."""
        task.kwargs = {"slot": current_slot(self.interval_seconds)}


class ReportingScheduler(TaskiqScheduler):
    """TaskIQ's scheduler, saying in one line when sending starts to fail (Redis down or
    restarting) and when it works again, instead of a traceback per task."""

    def __init__(self, broker: RedisStreamBroker, sources: list[ScheduleSource], report: Callable[[str], None]) -> None:
        super().__init__(broker, sources)
        self.report = report
        self.failed_sends = 0

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        """Sends the task; a failure is counted and the task left to the next interval."""
        try:
            await super().on_ready(source, task)
        except SendTaskError as error:
            if not self.failed_sends:
                self.report(f"task broker unreachable ({error.__cause__ or error}); "
                            "tasks are not sent until it answers again")
            self.failed_sends += 1
            return
        if self.failed_sends:
            self.report(f"task broker reachable again; {self.failed_sends} task(s) were not sent meanwhile")
            self.failed_sends = 0


async def dispatch(broker: RedisStreamBroker, user_ids: Sequence[str], interval_seconds: int, users_per_task: int,
                   report: Callable[[str], None]) -> None:
    """Sends every group's cycle task every interval until cancelled (TaskIQ's scheduler loop)."""
    one_line_library_warnings()
    scheduler = ReportingScheduler(broker, [UserCycleSchedule(user_ids, interval_seconds, users_per_task)], report)
    await run_scheduler_task(scheduler, run_startup=True, interval=timedelta(minutes=1))


async def work(broker: RedisStreamBroker, run_cycle_task: Callable[[list[str], int], str]) -> None:
    """Takes cycle tasks from the broker and runs them with ``run_cycle_task(user_ids, slot)``,
    one at a time, until cancelled. TaskIQ's receiver starts listening again by itself
    after a broker error (Redis down, restarting, restarted empty): the worker resumes."""
    one_line_library_warnings()

    def user_cycles(user_ids: list[str], slot: int) -> str:  # a plain function: TaskIQ renames what it registers
        return run_cycle_task(user_ids, slot)

    broker.register_task(user_cycles, task_name=CYCLE_TASK)
    # One task at a time, its cycles one after the other: one keeper account signs them all.
    await run_receiver_task(broker, sync_workers=1, max_async_tasks=1, run_startup=True)


def dispatch_until_signalled(broker: RedisStreamBroker, user_ids: Sequence[str], interval_seconds: int,
                             users_per_task: int, report: Callable[[str], None]) -> None:
    """``dispatch`` until SIGINT or SIGTERM (the `ape run keeper dispatch` process)."""
    asyncio.run(until_signalled(dispatch(broker, user_ids, interval_seconds, users_per_task, report)))


async def until_signalled(job: Coroutine) -> None:
    """Runs ``job`` until SIGINT or SIGTERM cancels it."""
    task = asyncio.ensure_future(job)
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def one_line_library_warnings() -> None:
    """TaskIQ logs each failed attempt to reach Redis with its traceback; an operator
    needs the one line that says what failed. Its loggers get a handler of their own
    that prints that line (a handler's filter sees the records of every child logger)."""
    library = logging.getLogger("taskiq")
    if library.handlers:
        return
    handler = logging.StreamHandler()
    handler.addFilter(_drop_traceback)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    library.addHandler(handler)
    library.propagate = False


def _drop_traceback(record: logging.LogRecord) -> bool:
    record.exc_info, record.exc_text, record.stack_info = None, None, None
    return True
