"""Everything that watches a keeper run, started before it and closed after it: the
Prometheus metrics (served when ``metrics_port`` is set) and the webhook notifier.
The scheduler gets them as its ``on_cycle`` and ``on_beat`` hooks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime

from keepers.config import KeeperConfig, UserConfig
from keepers.cycle import CycleResult
from keepers.metrics import KeeperMetrics, serving
from keepers.network_config import NetworkSpec
from keepers.networks import node_endpoints
from keepers.notify import Notifier


class Watchers:
    """The metrics and the notifier of one keeper run; ``close`` stops what was started."""

    def __init__(self, config: KeeperConfig, spec: NetworkSpec, users: Sequence[UserConfig], network: str,
                 report: Callable[[str], None]) -> None:
        settings = config.settings
        self.metrics = KeeperMetrics()
        self.metrics.describe(settings, spec, users)
        # Secrets a message could quote: the node URLs (with their keys) and the store's.
        secrets = [settings.resolved_store_url(), *(endpoint.url for endpoint in node_endpoints(network))]
        self._running = ExitStack()
        self._running.enter_context(serving(self.metrics, settings.metrics_port, report))  # a busy port fails here
        self.notifier = Notifier(settings.webhooks, secrets=secrets)
        self._running.callback(self.notifier.close)

    @property
    def on_cycle(self) -> list[Callable[[CycleResult], None]]:
        """The scheduler's hooks for each finished cycle."""
        return [self.metrics.record_cycle, self.notifier.cycle_done]

    @property
    def on_beat(self) -> list[Callable[[datetime], None]]:
        """The scheduler's hooks for each heartbeat."""
        return [self.metrics.record_heartbeat]

    def close(self) -> None:
        """Lets the notifier send what is queued (a few seconds at most), then stops the exporter."""
        self._running.close()
