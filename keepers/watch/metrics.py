"""Prometheus metrics of a keeper process, and the exporter that serves them.

The scheduler hands every finished cycle's ``CycleResult`` to ``record_cycle`` and
every heartbeat to ``record_heartbeat``; nothing inside a cycle touches a metric. The
metrics live in a registry of their own (not prometheus-client's global one), so
several keepers in one process, or tests, never share a series. Labels are bounded:
user ids and token symbols come from the configuration, statuses and rules from the
code. ``*_quote`` values are in units of the network's quote token (e.g. USDC).

The exporter is prometheus-client's own WSGI server in a daemon thread: a scrape
reads the registry and never waits for a cycle.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib.metadata import version
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)

from keepers.base.errors import SentinelError
from keepers.engine.cycle import CycleResult
from keepers.settings.keeper import KeeperSettings, UserConfig
from keepers.settings.network import NetworkSpec
from keepers.watch.background import in_background

METRICS_HOST = "127.0.0.1"
# From a cycle that only reads (one RPC round trip, ~10 ms) to one that waits for a
# transaction to be mined and replaced (minutes).
CYCLE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class KeeperMetrics:
    """Every metric of one keeper process, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.build = Info("sentinel_build", "Versions this keeper runs", registry=r)
        self.cycles = Counter("sentinel_cycles_total", "Finished cycles", ["user", "outcome"], registry=r)
        self.cycle_duration = Histogram("sentinel_cycle_duration_seconds", "Wall time of one user's cycle",
                                        buckets=CYCLE_BUCKETS, registry=r)
        self.failed_in_a_row = Gauge("sentinel_user_consecutive_failed_cycles",
                                     "Cycles in a row that ended in an error or a failed trade", ["user"], registry=r)
        self.trades = Counter("sentinel_trades_total", "Trades by their status after execution", ["user", "status"],
                              registry=r)
        self.blocks = Counter("sentinel_risk_blocks_total", "Trades stopped, by the rule that stopped them",
                              ["user", "rule"], registry=r)
        self.rpc_requests = Counter("sentinel_rpc_requests_total", "JSON-RPC requests made by cycles", registry=r)
        self.rpc_errors = Counter("sentinel_rpc_errors_total", "JSON-RPC requests of cycles that got no answer",
                                  registry=r)
        self.oracle_age = Gauge("sentinel_oracle_answer_age_seconds",
                                "Block time minus the feed's updatedAt at the last read", ["feed"], registry=r)
        self.oracle_max_age = Gauge("sentinel_oracle_max_age_seconds", "The feed's configured staleness limit",
                                    ["feed"], registry=r)
        self.vault_value = Gauge("sentinel_user_vault_value_quote", "The user's vault balances at oracle prices",
                                 ["user"], registry=r)
        self.vault_peak = Gauge("sentinel_user_vault_peak_quote",
                                "The highest vault value seen (the drawdown kill switch's reference)", ["user"],
                                registry=r)
        self.pnl = Gauge("sentinel_user_pnl_quote", "Profit of the keeper's positions: realised, or open at oracle "
                         "prices", ["user", "kind"], registry=r)
        self.kill_switch = Gauge("sentinel_kill_switch_engaged", "1 while a kill switch (own or global) holds the user",
                                 ["user"], registry=r)
        self.kill_drawdown = Gauge("sentinel_user_kill_switch_drawdown_ratio",
                                   "Drawdown below the peak at which the user's kill switch engages", ["user"],
                                   registry=r)
        self.heartbeat = Gauge("sentinel_heartbeat_timestamp_seconds", "Unix time of this keeper's last heartbeat",
                               registry=r)
        self.dead_man_after = Gauge("sentinel_dead_man_after_seconds",
                                    "Silence after which the keeper counts as dead (dead_man_intervals x interval)",
                                    registry=r)
        self.admin_operations = Gauge("sentinel_admin_operations_pending",
                                      "Scheduled admin operations that affect users (all but sweeps), not yet executed or cancelled", registry=r)
        self.admin_operations_dangerous = Gauge("sentinel_admin_operations_dangerous",
                                                "Scheduled admin operations that could shorten a delay or add a role member", registry=r)

    def describe(self, settings: KeeperSettings, spec: NetworkSpec, users: Sequence[UserConfig]) -> None:
        """Sets what the configuration fixes: build, limits and thresholds the alert rules compare with."""
        self.build.info({"version": version("qie-sentinel"), "eth_ape": version("eth-ape"),
                         "python": platform.python_version()})
        self.dead_man_after.set(settings.dead_man_intervals * settings.cycle_interval_seconds)
        for token in spec.all_tokens:
            self.oracle_max_age.labels(token.symbol).set(token.max_age_seconds)
        for user in users:
            if user.risk.kill_switch_drawdown is not None:
                self.kill_drawdown.labels(user.id).set(user.risk.kill_switch_drawdown)

    def record_cycle(self, result: CycleResult) -> None:
        """Adds one finished cycle."""
        user = result.user_id
        self.cycles.labels(user, "error" if result.error else "ok").inc()
        self.cycle_duration.observe(result.duration_seconds)
        if result.failed:
            self.failed_in_a_row.labels(user).inc()
        else:
            self.failed_in_a_row.labels(user).set(0)
        for status, count in result.trade_statuses.items():
            self.trades.labels(user, status).inc(count)
        for rule, count in result.blocks_by_rule.items():
            self.blocks.labels(user, rule).inc(count)
        self.rpc_requests.inc(result.rpc_calls)
        self.rpc_errors.inc(result.rpc_errors)
        for token, age in result.feed_ages_seconds.items():
            self.oracle_age.labels(token).set(age)
        # A cycle that could not value the vault (a stale feed) leaves the last values.
        for gauge, value in ((self.vault_value.labels(user), result.vault_value_quote),
                             (self.vault_peak.labels(user), result.vault_peak_quote),
                             (self.pnl.labels(user, "realised"), result.realised_pnl_quote),
                             (self.pnl.labels(user, "open"), result.open_pnl_quote),
                             (self.kill_switch.labels(user), result.kill_switch)):
            if value is not None:
                gauge.set(value)

    def record_heartbeat(self, when: datetime) -> None:
        """Marks the keeper alive at ``when`` (the dead-man alert watches this)."""
        self.heartbeat.set(when.timestamp())

    def set_pending_admin_operations(self, count: int) -> None:
        """How many delayed admin operations are scheduled on-chain and still pending."""
        self.admin_operations.set(count)

    def set_dangerous_admin_operations(self, count: int) -> None:
        """How many pending admin operations could shorten a delay or add a role member."""
        self.admin_operations_dangerous.set(count)


@contextmanager
def serving(metrics: KeeperMetrics, port: int | None, report: Callable[[str], None],
            host: str = METRICS_HOST) -> Iterator[WSGIServer | None]:
    """Serves ``metrics`` at http://host:port/metrics while the block runs, and says where
    through ``report`` (port None: not served; 0: any free port)."""
    if port is None:
        yield None
        return
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as error:
        raise SentinelError(f"metrics_port: cannot listen on {host}:{port} ({error.strerror}); "
                            "choose a free port (0: any)") from None
    with in_background(server, thread):
        report(f"Metrics: http://{host}:{server.server_port}/metrics")
        yield server
