"""A keeper process as an operator runs it (`ape run keeper --interval 1 --metrics-port 0
--api 127.0.0.1:0`, a webhook in keeper.yaml) on a real anvil, scraped by a real
Prometheus that also loads the shipped alert rules. One deploy for the whole file:
each costs about 20 s."""

from __future__ import annotations

import json
import queue
import re
import signal
import threading
import time
import urllib.request

import pytest
from ape import accounts, project
from helpers_keeper import calm_then_dip, deploy_local_system, user_entry
from servers import PrometheusServer, WebhookServer
from test_alert_rules import RULES

USERS = [user_entry("alice", 3, ["WETH", "WBTC"]), user_entry("bob", 4, ["WBTC"])]


class OutputLines:
    """A process's output lines as they come (read by a thread, so waits can time out)."""

    def __init__(self, process) -> None:
        self.seen: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self._lines.put(line) for line in process.stdout], daemon=True).start()

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match:
        """The first line (from here on) that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}:\n{''.join(self.seen)}") from None
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found


def eventually(check, timeout: float = 60):
    """The first true result of ``check()`` within ``timeout`` seconds (else the last one)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.fixture
def webhook():
    with WebhookServer() as server:
        yield server


@pytest.fixture
def keeper(tmp_path, webhook):
    """A keeper process trading alice and bob every second on a dip, with metrics on a
    free port and trades sent to ``webhook``."""
    system = deploy_local_system(tmp_path, USERS, f"sqlite:///{tmp_path / 'sentinel.db'}",
                                 webhooks=[{"url": webhook.url, "events": ["trade"]}])
    history = system.write_history({"ETH": calm_then_dip(system.prices["WETH"]),
                                    "BTC": calm_then_dip(system.prices["WBTC"])})
    owner = accounts.test_accounts[0]  # schedules a router of its own: users should hear of it
    executor = project.Executor.at(system.record.address_of("Executor"))
    project.SentinelAccessManager.at(system.record.address_of("AccessManager")).schedule(
        executor, executor.addRouter.encode_input(owner.address), 0, sender=owner)
    process = system.keeper_process("--interval", "1", "--metrics-port", "0", "--api", "127.0.0.1:0",
                                    "--backfill", str(history))
    output = OutputLines(process)
    yield process, output
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


def test_prometheus_scrapes_the_keeper_and_evaluates_the_alert_rules_and_a_webhook_hears_of_trades(keeper, webhook):
    process, output = keeper
    port = int(output.wait_for(r"Metrics: http://127\.0\.0\.1:(\d+)/metrics").group(1))
    page = output.wait_for(r"Status page: (http://127\.0\.0\.1:\d+/)").group(1)
    prometheus = PrometheusServer([f"127.0.0.1:{port}"], [RULES])
    prometheus.start()
    try:
        mined_trades = 'sentinel_trades_total{job="sentinel", status="mined"}'
        assert eventually(lambda: len(prometheus.query(mined_trades)) == 2), output.seen
        mined = prometheus.query(mined_trades)
        assert {(s["metric"]["user"], s["value"][1]) for s in mined} == {("alice", "2"), ("bob", "1")}, output.seen
        assert len(prometheus.query('sentinel_cycles_total{outcome="ok"}')) == 2
        beat = prometheus.query("time() - sentinel_heartbeat_timestamp_seconds")
        assert float(beat[0]["value"][1]) < 30  # the loop beats
        # Before the first scrape, the dead-man rule saw no heartbeat (pending); then only
        # the scheduled operation's alert.
        def alerts():
            return sorted(alert["metric"]["alertname"] for alert in prometheus.query("ALERTS"))
        assert eventually(lambda: alerts() == ["SentinelAdminOperationPending"], timeout=20), alerts()
        rules = prometheus.rules()
        assert len(rules) == 8 and {rule["health"] for rule in rules} == {"ok"}, rules
        with urllib.request.urlopen(f"{page}api/trades", timeout=10) as answer:  # the keeper's own status API
            assert sorted(trade["user"] for trade in json.load(answer)) == ["alice", "alice", "bob"]
        with urllib.request.urlopen(f"{page}api/users", timeout=10) as answer:  # as the last cycle read them
            balances = {user["id"]: user["balances"]["tokens"] for user in json.load(answer)}
        assert set(balances["alice"]) == {"USDC", "WETH", "WBTC"} and 0 < balances["alice"]["USDC"] <= 10_000
        with urllib.request.urlopen(f"{page}api/admin-operations", timeout=10) as answer:
            assert [(op["target"], op["function"], op["affects_users"]) for op in json.load(answer)] == [
                ("Executor", "addRouter", True)]
    finally:
        prometheus.stop()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0, "".join(output.seen)
    assert sorted(p["user"] for p in webhook.payloads()) == ["alice", "bob"]  # one notice per trading cycle
