"""The keeper's Prometheus metrics: what a cycle's result becomes, the limits the alert
rules compare with, and the exporter (a real HTTP server on a free port)."""

from __future__ import annotations

import socket
import urllib.request
from collections import Counter
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from keepers.base.errors import SentinelError
from keepers.engine.cycle import CycleResult
from keepers.settings.keeper import load_keeper_config
from keepers.settings.network import load_network_spec, spec_path_for
from keepers.watch.metrics import KeeperMetrics, serving

STARTED = datetime(2026, 1, 2, tzinfo=UTC)


def cycle(**fields) -> CycleResult:
    return CycleResult(user_id="alice", started_at=STARTED, **fields)


def value(metrics: KeeperMetrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_cycle_results_become_counters_and_gauges():
    metrics = KeeperMetrics()
    metrics.record_cycle(cycle(
        duration_seconds=0.2, rpc_calls=4, rpc_errors=1, trade_statuses=Counter({"mined": 1, "reverted": 1}),
        blocks_by_rule=Counter({"cooldown": 2}), feed_ages_seconds={"WETH": 120, "USDC": 30},
        vault_value_quote=10_500.0, vault_peak_quote=11_000.0, realised_pnl_quote=12.5, open_pnl_quote=-3.0,
        kill_switch=False,
    ))
    assert value(metrics, "sentinel_cycles_total", user="alice", outcome="ok") == 1
    assert value(metrics, "sentinel_trades_total", user="alice", status="mined") == 1
    assert value(metrics, "sentinel_trades_total", user="alice", status="reverted") == 1
    assert value(metrics, "sentinel_risk_blocks_total", user="alice", rule="cooldown") == 2
    assert value(metrics, "sentinel_rpc_requests_total") == 4
    assert value(metrics, "sentinel_rpc_errors_total") == 1
    assert value(metrics, "sentinel_oracle_answer_age_seconds", feed="WETH") == 120
    assert value(metrics, "sentinel_user_vault_value_quote", user="alice") == 10_500
    assert value(metrics, "sentinel_user_vault_peak_quote", user="alice") == 11_000
    assert value(metrics, "sentinel_user_pnl_quote", user="alice", kind="realised") == 12.5
    assert value(metrics, "sentinel_user_pnl_quote", user="alice", kind="open") == -3
    assert value(metrics, "sentinel_kill_switch_engaged", user="alice") == 0
    assert value(metrics, "sentinel_cycle_duration_seconds_bucket", le="0.25") == 1
    assert value(metrics, "sentinel_cycle_duration_seconds_bucket", le="0.1") == 0
    assert value(metrics, "sentinel_user_consecutive_failed_cycles", user="alice") == 1  # the reverted trade

    metrics.record_cycle(cycle(error="ConnectionError: node down", rpc_calls=1, rpc_errors=1))
    assert value(metrics, "sentinel_cycles_total", user="alice", outcome="error") == 1
    assert value(metrics, "sentinel_user_consecutive_failed_cycles", user="alice") == 2
    # A cycle that could not value the vault leaves the last known values, not zeros.
    assert value(metrics, "sentinel_user_vault_value_quote", user="alice") == 10_500
    assert value(metrics, "sentinel_kill_switch_engaged", user="alice") == 0

    metrics.record_cycle(cycle(kill_switch=True))
    assert value(metrics, "sentinel_user_consecutive_failed_cycles", user="alice") == 0
    assert value(metrics, "sentinel_kill_switch_engaged", user="alice") == 1
    assert value(metrics, "sentinel_cycles_total", user="alice", outcome="ok") == 2


def test_the_configuration_sets_build_info_and_the_thresholds_alerts_compare_with():
    metrics = KeeperMetrics()
    config = load_keeper_config(environ={})  # the shipped example: alice has no drawdown switch
    spec = load_network_spec(spec_path_for("local"))
    metrics.describe(config.settings, spec, config.users)
    metrics.record_heartbeat(STARTED)
    metrics.set_pending_admin_operations(2)

    settings = config.settings
    assert value(metrics, "sentinel_dead_man_after_seconds") == settings.dead_man_intervals * settings.cycle_interval_seconds
    assert value(metrics, "sentinel_oracle_max_age_seconds", feed="WETH") == spec.token("WETH").max_age_seconds
    assert value(metrics, "sentinel_user_kill_switch_drawdown_ratio", user="bob") == 0.5
    assert value(metrics, "sentinel_user_kill_switch_drawdown_ratio", user="alice") is None
    assert value(metrics, "sentinel_heartbeat_timestamp_seconds") == STARTED.timestamp()
    assert value(metrics, "sentinel_admin_operations_pending") == 2
    [build] = [s for s in metrics.registry.collect() if s.name == "sentinel_build"][0].samples
    assert build.labels["version"] == "0.1.0" and build.labels["eth_ape"] == "0.8.51"


def test_the_exporter_serves_the_registry_on_localhost_and_stops():
    metrics = KeeperMetrics()
    metrics.record_cycle(cycle(trade_statuses=Counter({"mined": 1})))
    lines = []
    with serving(metrics, 0, lines.append) as server:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        assert lines == [f"Metrics: {url}"]
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["sentinel_trades"].type == "counter"
    [sample] = [s for s in families["sentinel_trades"].samples if s.name == "sentinel_trades_total"]
    assert sample.labels == {"user": "alice", "status": "mined"} and sample.value == 1
    assert families["sentinel_cycle_duration_seconds"].type == "histogram"
    with pytest.raises(OSError):  # stopped with the block
        urllib.request.urlopen(url, timeout=10)


def test_a_busy_port_is_one_line_naming_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SentinelError, match=rf"^metrics_port: cannot listen on 127.0.0.1:{port} \(.+\); choose"):
            with serving(KeeperMetrics(), port, print):
                pytest.fail("serving on a taken port should have raised")
