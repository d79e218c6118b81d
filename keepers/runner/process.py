"""A keeper process from start to stop: checks and context, price history, watchers,
scheduler; then cycles on a schedule, once (cron), or as a worker's tasks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from keepers.base.errors import SentinelError
from keepers.base.redact import redact_url
from keepers.chain.deployment import DeploymentRecord
from keepers.cluster.tasks import dispatch_until_signalled, make_broker
from keepers.cluster.worker import Worker, claim_account
from keepers.engine.cycle import KeeperContext
from keepers.engine.scheduler import Scheduler
from keepers.engine.startup import build_context, reconcile_at_start, warm_up_history
from keepers.persistence.store import Store
from keepers.settings.keeper import KeeperConfig, UserConfig
from keepers.settings.network import NetworkSpec
from keepers.watch.watchers import Watchers
from strategies.data import PriceData


@dataclass
class KeeperProcess:
    """One process's parts: the checked context, whoever watches its cycles, and the
    scheduler that runs them. ``close`` stops them in order."""

    context: KeeperContext
    watchers: Watchers
    scheduler: Scheduler
    users: tuple[UserConfig, ...]  # the disabled ones too: their unfinished trades still settle

    @classmethod
    def start(cls, config: KeeperConfig, spec: NetworkSpec, record: DeploymentRecord, store: Store,
              users: Sequence[UserConfig], *, network: str, local_chain: bool, echo: Callable[[str], None],
              cycle_report: Callable[[str], None] | None = None) -> KeeperProcess:
        """Checks the system and the users against the chain (one-line SentinelError
        otherwise) and wires the parts; ``cycle_report`` (default ``echo``) hears each
        cycle's lines."""
        context = build_context(config, spec, record, store, local_chain=local_chain, users=tuple(users))
        watchers = Watchers(config, spec, users, network, store, echo, context.admin_watch)
        scheduler = Scheduler(context, users, report=cycle_report or echo, on_cycle=watchers.on_cycle,
                              on_beat=watchers.on_beat)
        return cls(context, watchers, scheduler, tuple(users))

    def banner(self, what: str, network_label: str) -> str:
        """The line a process prints once it is ready: who signs, how many users, which store."""
        context = self.context
        keeper = context.client.keeper
        mode = "dry run, nothing is sent" if context.config.settings.dry_run else f"keeper {keeper.address}"
        return (f"{what} {context.keeper_id} on {network_label} ({mode}); {len(self.scheduler.users)} user(s), "
                f"store {context.store.engine.url.render_as_string(hide_password=True)}")

    def close(self) -> None:
        """Gives back the leases, then stops the watchers (metrics, API, webhooks)."""
        self.scheduler.close()
        self.watchers.close()


def run_keeper(process: KeeperProcess, *, network_label: str, once: bool, series: Mapping[str, str],
               backfill: PriceData | None, echo: Callable[[str], None]) -> None:
    """`ape run keeper`: warm up, reconcile every unfinished trade, then one cycle per user
    (``once``) or cycles every interval until SIGINT/SIGTERM."""
    try:
        warm_up_history(process.context, series, backfill, echo)
        reconciled = reconcile_at_start(process.context, process.users, echo)
        process.scheduler.install_signal_handlers()
        echo(process.banner("Keeper", network_label))
        if reconciled < len(process.users):
            echo(f"{len(process.users) - reconciled} user(s) held by another keeper: their trades are "
                 "settled by their holder, or by this keeper's first cycle once the lease is free")
        if once:
            process.scheduler.run_once()
        else:
            process.scheduler.run_forever()
    finally:
        process.close()


def run_worker(process: KeeperProcess, *, network_label: str, series: Mapping[str, str], backfill: PriceData | None,
               echo: Callable[[str], None]) -> None:
    """`ape run keeper worker`: claims its keeper account, reconciles the users no other
    worker holds, then runs cycle tasks from Redis until SIGINT/SIGTERM."""
    context, settings = process.context, process.context.config.settings
    address = context.client.keeper.address
    try:
        warm_up_history(context, series, backfill, echo)
        claim_account(context.store, address, context.keeper_id, settings.lease_seconds)
        worker = Worker(process.scheduler, address, echo)
        try:
            reconciled = reconcile_at_start(context, process.users, echo)
            echo(process.banner("Worker", network_label))
            echo(f"Reconciled {reconciled} user(s) no other worker holds; taking cycle tasks from "
                 f"{redact_url(settings.redis_url)}")
            worker.serve(make_broker(settings.redis_url, redeliver_after_seconds=settings.lease_seconds))
        finally:
            worker.close()
    finally:
        process.watchers.close()


def run_dispatcher(config: KeeperConfig, users: Sequence[UserConfig], echo: Callable[[str], None]) -> None:
    """`ape run keeper dispatch`: every enabled user's cycle as a task every interval,
    until SIGINT/SIGTERM. Needs no store and no chain: the users file and Redis."""
    settings = config.settings
    enabled = [user.id for user in users if user.enabled]
    if not enabled:
        raise SentinelError(f"users: no enabled user in {settings.users_file}; nothing to dispatch")
    broker = make_broker(settings.redis_url, redeliver_after_seconds=settings.lease_seconds)
    echo(f"Dispatching {len(enabled)} user(s)' cycles every {settings.cycle_interval_seconds} s, "
         f"{settings.users_per_read} per task, to "
         f"{redact_url(settings.redis_url)}")
    dispatch_until_signalled(broker, enabled, settings.cycle_interval_seconds, settings.users_per_read, echo)
