"""Everything that watches a keeper run, started before it and closed after it: the
Prometheus metrics (served when ``metrics_port`` is set). The scheduler gets them as
its ``on_cycle`` and ``on_beat`` hooks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime

from keepers.config import KeeperConfig, UserConfig
from keepers.cycle import CycleResult
from keepers.metrics import KeeperMetrics, serving
from keepers.network_config import NetworkSpec


class Watchers:
    """The metrics of one keeper run; ``close`` stops what was started."""

    def __init__(self, config: KeeperConfig, spec: NetworkSpec, users: Sequence[UserConfig], network: str,
                 report: Callable[[str], None]) -> None:
        settings = config.settings
        self.metrics = KeeperMetrics()
        self.metrics.describe(settings, spec, users)
        self._running = ExitStack()
        self._running.enter_context(serving(self.metrics, settings.metrics_port, report))

    @property
    def on_cycle(self) -> list[Callable[[CycleResult], None]]:
        """The scheduler's hooks for each finished cycle."""
        return [self.metrics.record_cycle]

    @property
    def on_beat(self) -> list[Callable[[datetime], None]]:
        """The scheduler's hooks for each heartbeat."""
        return [self.metrics.record_heartbeat]

    def close(self) -> None:
        """Stops the exporter."""
        self._running.close()
