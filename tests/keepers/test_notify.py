"""Webhook notifications against a real local HTTP server (http.server in a thread)
that is slow, down or failing: the cycle side never waits, posts are retried, the
queue and the rate limit hold, and no secret reaches a message."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
from servers import WebhookServer

from keepers.engine.cycle import CycleResult
from keepers.settings.keeper import Webhook
from keepers.watch.notify import Notice, Notifier, body

STARTED = datetime(2026, 1, 2, tzinfo=UTC)
NODE_URL = "https://eth-sepolia.g.alchemy.com/v2/Zk3xQ9mLw2Rt7Yp4Vb8Nc1"


def cycle(user: str = "alice", **fields) -> CycleResult:
    return CycleResult(user_id=user, started_at=STARTED, **fields)


def traded(user: str = "alice", n: int = 0) -> CycleResult:
    return cycle(user, trade_statuses=Counter({"mined": 1}), events=[f"WETH bollinger BUY number {n}"])


def notifier(url: str, **options) -> Notifier:
    webhook_fields = {key: options.pop(key) for key in ("format", "events", "max_per_minute") if key in options}
    return Notifier([Webhook(url=url, **webhook_fields)], first_delay=0.01, max_delay=0.05, **options)


def test_notices_are_sent_when_something_changes():
    with WebhookServer() as server:
        sending = notifier(server.url)
        for result in (
            traded(),
            cycle(blocks_by_rule=Counter({"cooldown": 1})),
            cycle(blocks_by_rule=Counter({"cooldown": 1})),  # the same block again: no notice
            cycle(error="ConnectionError: node down"),
            cycle(error="ConnectionError: node down"),  # still failing: no notice
            cycle(kill_switch=True),  # recovered, and the kill switch engaged
            cycle(kill_switch=True),
            cycle(trade_statuses=Counter({"skipped": 1})),  # a dry run's skip is neither trade nor failure
        ):
            sending.cycle_done(result)
        sending.close()
    assert [p["event"] for p in server.payloads()] == ["trade", "block", "failure", "kill_switch", "recovery"]
    assert server.payloads()[0]["text"].startswith("[Sentinel] alice: trade\n")
    assert "WETH bollinger BUY" in server.payloads()[0]["text"]
    assert server.received[0]["content_type"] == "application/json"
    assert sending.sent == 5 and sending.failed == 0


@pytest.mark.parametrize(("webhook_format", "key"), [("slack", "text"), ("discord", "content")])
def test_slack_and_discord_bodies(webhook_format, key):
    with WebhookServer() as server:
        sending = notifier(server.url, format=webhook_format, events=["trade"])
        sending.cycle_done(traded())
        sending.cycle_done(cycle(error="boom"))  # a failure: not among this webhook's events
        sending.close()
    [payload] = server.payloads()
    assert list(payload) == [key] and payload[key].startswith("[Sentinel] alice: trade\n")
    assert len(body("discord", Notice("trade", "alice", "x" * 5000))["content"]) == 2000


def test_a_failing_webhook_is_retried_with_backoff():
    with WebhookServer(statuses=(500, 503)) as server:
        sending = notifier(server.url)
        sending.cycle_done(traded())
        sending.close()
    assert len(server.received) == 3 and sending.sent == 1  # two 5xx, then delivered
    with WebhookServer(statuses=(500,) * 10) as server:
        sending = notifier(server.url, attempts=3)
        sending.cycle_done(traded())
        sending.close()
    assert len(server.received) == 3 and sending.failed == 1  # given up after the attempts
    with WebhookServer(statuses=(404,)) as server:
        sending = notifier(server.url)
        sending.cycle_done(traded())
        sending.close()
    assert len(server.received) == 1 and sending.failed == 1  # a refusal is not retried


def test_a_webhook_that_is_down_costs_the_cycle_nothing():
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sending = notifier(f"http://127.0.0.1:{closed_port}/hook", attempts=3)
    sending.cycle_done(traded())
    sending.close()
    assert sending.failed == 1 and sending.sent == 0


def test_a_slow_webhook_never_blocks_the_cycle_and_the_queue_drops_the_oldest():
    gate = threading.Event()
    with WebhookServer(gate=gate) as server:
        sending = notifier(server.url, queue_size=5)
        sending.cycle_done(traded(n=0))
        assert server.arrived.wait(10)  # the worker now waits on the webhook's answer
        for n in range(1, 21):  # every call returns although the webhook does not answer
            sending.cycle_done(traded(n=n))
        assert len(server.received) == 1 and sending.dropped == 15
        gate.set()
        sending.close()
    texts = [p["text"] for p in server.payloads()]
    assert len(texts) == 6 and "number 0" in texts[0]
    assert [text.rsplit("number ", 1)[1].split()[0] for text in texts[1:]] == ["16", "17", "18", "19", "20"]


def test_the_rate_limit_holds_and_says_what_it_dropped():
    with WebhookServer() as server:
        sending = notifier(server.url, max_per_minute=3)
        for n in range(30):  # a loop that trades (or fails) without pause
            sending.cycle_done(traded(n=n))
        sending.close()
    assert len(server.received) == 3 and sending.sent == 3
    assert body("json", Notice("trade", "alice", "t"), suppressed=27)["text"].endswith(
        "(27 earlier notice(s) dropped by the rate limit)")


def test_no_secret_reaches_a_message():
    with WebhookServer() as server:
        sending = notifier(server.url, secrets=[NODE_URL])
        sending.cycle_done(cycle(error=f"ConnectionError: {NODE_URL} refused; key Zk3xQ9mLw2Rt7Yp4Vb8Nc1"))
        sending.cycle_done(cycle(events=[f"posted to {server.url}"]))  # recovery, quoting the webhook itself
        sending.close()
    text = json.dumps(server.payloads())
    assert len(server.received) == 2 and "eth-sepolia.g.alchemy.com/v2/***" in text
    assert "Zk3xQ9mLw2Rt7Yp4Vb8Nc1" not in text and "T0123456789abcdefXYZ" not in text
