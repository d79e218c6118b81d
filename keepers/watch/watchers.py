"""Everything that watches a keeper run, started before it and closed after it: the
Prometheus metrics (served when ``metrics_port`` is set), the webhook notifier and
the status API and page (served when ``api`` is set). The scheduler gets them as its
``on_cycle`` and ``on_beat`` hooks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime

from keepers.chain.admin_ops import AdminWatch
from keepers.engine.cycle import CycleResult
from keepers.persistence.store import Store
from keepers.settings.keeper import KeeperConfig, UserConfig
from keepers.settings.network import NetworkSpec
from keepers.settings.nodes import node_endpoints
from keepers.watch.api import serving_api
from keepers.watch.api_data import StatusData
from keepers.watch.metrics import KeeperMetrics, serving
from keepers.watch.notify import Notifier


class Watchers:
    """The metrics, notifier and status API of one keeper run; ``close`` stops what was started."""

    def __init__(self, config: KeeperConfig, spec: NetworkSpec, users: Sequence[UserConfig], network: str,
                 store: Store, report: Callable[[str], None], admin_watch: AdminWatch | None = None) -> None:
        settings = config.settings
        self.admin_watch = admin_watch
        self.metrics = KeeperMetrics()
        self.metrics.describe(settings, spec, users)
        # Secrets a message could quote: the node URLs (with their keys) and the store's.
        secrets = [settings.resolved_store_url(), *(endpoint.url for endpoint in node_endpoints(network))]
        self.data = data = StatusData(store=store, config=config, decimals=spec.decimals, quote=spec.quote.symbol,
                          registry=self.metrics.registry,
                          admin_operations=lambda: [op.to_json() for op in admin_watch.last_read()] if admin_watch else [])
        with ExitStack() as starting:  # a busy port stops what was started before it
            starting.enter_context(serving(self.metrics, settings.metrics_port, report))
            starting.enter_context(serving_api(data, settings.api, settings.api_token, report))
            self.notifier = Notifier(settings.webhooks, secrets=secrets)
            starting.callback(self.notifier.close)
            self._running = starting.pop_all()

    @property
    def on_cycle(self) -> list[Callable[[CycleResult], None]]:
        """The scheduler's hooks for each finished cycle."""
        return [self.metrics.record_cycle, self.notifier.cycle_done, self.data.record_balances]

    @property
    def on_beat(self) -> list[Callable[[datetime], None]]:
        """The scheduler's hooks for each heartbeat."""
        return [self.metrics.record_heartbeat, self._count_admin_operations]

    def _count_admin_operations(self, _when: datetime) -> None:
        if self.admin_watch is not None:
            self.metrics.set_pending_admin_operations(len(self.admin_watch.affecting_users()))
            self.metrics.set_dangerous_admin_operations(len(self.admin_watch.dangerous()))

    def close(self) -> None:
        """Lets the notifier send what is queued (a few seconds at most), then stops the servers."""
        self._running.close()
