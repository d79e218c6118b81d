"""Webhook notifications: trades, blocks, kill switches, failures and recoveries.

The scheduler hands each finished cycle to ``Notifier.cycle_done``, which only decides
what to say and appends it to a bounded queue (the oldest notice is dropped, and
counted, when it is full); one background thread posts the queue to every webhook. So
a slow, failing or unreachable webhook never blocks, slows or fails a cycle.

A notice is sent when something changes, not on every cycle: each trade, a rule that
starts blocking, a kill switch that engages, a user whose cycles start failing and
recover. Each webhook has a token-bucket rate limit (a loop that keeps failing cannot
flood a channel; what it drops is counted and mentioned in the next message). Failed
posts are retried with capped backoff (keepers/base/retry.py) on connection errors,
timeouts, 429 and 5xx answers. Every text goes through keepers/base/redact.py first, with
the node, store and webhook URLs as known secrets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import requests

from keepers.base.redact import redact_text
from keepers.base.retry import TRANSIENT_ERRORS, with_retries
from keepers.engine.cycle import CycleResult
from keepers.settings.keeper import Webhook

logger = logging.getLogger("sentinel.notify")

TITLES = {"trade": "trade", "block": "trade blocked", "kill_switch": "KILL SWITCH engaged",
          "failure": "cycle failing", "recovery": "recovered"}
DISCORD_LIMIT = 2000  # characters of a Discord message's content


@dataclass(frozen=True)
class Notice:
    """One thing to tell people about."""

    kind: str  # one of config.NOTICE_KINDS
    user_id: str
    text: str


@dataclass
class _UserState:
    failing: bool = False
    kill_switch: bool = False
    block_rules: frozenset[str] = frozenset()


class _RetryableAnswer(Exception):
    """A 429 or 5xx answer: the webhook may take the message later."""


class _RateLimit:
    """A token bucket: ``per_minute`` messages at once, then ``per_minute`` a minute.
    (A dozen lines; not worth a dependency.)"""

    def __init__(self, per_minute: int) -> None:
        self.capacity = self.tokens = float(per_minute)
        self.rate = per_minute / 60
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class _Channel:
    webhook: Webhook
    limit: _RateLimit
    suppressed: int = 0  # notices the rate limit dropped since the last one sent


def body(webhook_format: str, notice: Notice, suppressed: int = 0) -> dict:
    """The JSON body of ``notice`` for a webhook of ``webhook_format``."""
    text = notice.text + (f"\n({suppressed} earlier notice(s) dropped by the rate limit)" if suppressed else "")
    if webhook_format == "slack":
        return {"text": text}
    if webhook_format == "discord":
        return {"content": text[:DISCORD_LIMIT]}
    return {"event": notice.kind, "user": notice.user_id, "text": text, "suppressed": suppressed}


@dataclass
class Notifier:
    """Turns cycles into notices and posts them from a background thread."""

    webhooks: Sequence[Webhook]
    secrets: Sequence[str] = ()  # URLs whose secret parts must never appear in a message
    queue_size: int = 100
    attempts: int = 4
    first_delay: float = 0.5
    max_delay: float = 8.0
    timeout_seconds: float = 5.0
    dropped: int = field(default=0, init=False)  # notices the full queue pushed out
    sent: int = field(default=0, init=False)
    failed: int = field(default=0, init=False)  # given up after the retries, or refused (4xx)
    _states: dict[str, _UserState] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._queue: deque[Notice] = deque()
        self._ready = threading.Condition()
        self._closing = False
        self._abort = threading.Event()  # also cuts retry waits short
        self._channels = [_Channel(webhook, _RateLimit(webhook.max_per_minute)) for webhook in self.webhooks]
        self._secrets = [*self.secrets, *(webhook.url for webhook in self.webhooks)]
        self._session = requests.Session()
        self._worker = threading.Thread(target=self._run, name="sentinel-notify", daemon=True)
        self._worker.start()

    def cycle_done(self, result: CycleResult) -> None:
        """Queues what ``result`` changed (never blocks; called by the scheduler)."""
        if not self._channels:
            return  # no webhook configured: nothing to decide or redact
        for notice in self._notices(result):
            self.put(notice)

    def put(self, notice: Notice) -> None:
        """Queues ``notice``; when the queue is full the oldest one is dropped and counted."""
        with self._ready:
            if len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(notice)
            self._ready.notify()

    def close(self, flush_seconds: float = 5.0) -> None:
        """Sends what is queued for up to ``flush_seconds``, then stops the thread."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._worker.join(flush_seconds)
        self._abort.set()
        self._worker.join()
        self._session.close()

    def _notices(self, result: CycleResult) -> list[Notice]:
        state = self._states.setdefault(result.user_id, _UserState())
        failing = result.failed
        rules = frozenset(result.blocks_by_rule)
        kinds = [kind for kind, happened in (
            ("trade", result.trades_ok > 0),
            ("block", bool(rules - state.block_rules)),
            ("kill_switch", bool(result.kill_switch) and not state.kill_switch),
            ("failure", failing and not state.failing),
            ("recovery", state.failing and not failing),
        ) if happened]
        state.failing, state.block_rules = failing, rules
        if result.kill_switch is not None:
            state.kill_switch = result.kill_switch
        text = redact_text(result.line(), self._secrets)
        return [Notice(kind, result.user_id, f"[Sentinel] {result.user_id}: {TITLES[kind]}\n{text}")
                for kind in kinds]

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closing:
                    self._ready.wait()
                if not self._queue or self._abort.is_set():
                    return
                notice = self._queue.popleft()
            for channel in self._channels:
                if notice.kind in channel.webhook.events:
                    self._deliver(channel, notice)

    def _deliver(self, channel: _Channel, notice: Notice) -> None:
        if not channel.limit.take():
            channel.suppressed += 1
            return
        payload = body(channel.webhook.format, notice, channel.suppressed)
        try:
            with_retries(lambda: self._post(channel.webhook.url, payload), attempts=self.attempts,
                         first_delay=self.first_delay, max_delay=self.max_delay, sleep=self._abort.wait,
                         retry_on=(*TRANSIENT_ERRORS, _RetryableAnswer))
        except Exception as error:  # noqa: BLE001 - a webhook's failure is logged, never raised
            self.failed += 1
            logger.warning("webhook %s failed: %s", redact_text(channel.webhook.url, self._secrets),
                           redact_text(f"{type(error).__name__}: {error}", self._secrets))
            return
        self.sent += 1
        channel.suppressed = 0

    def _post(self, url: str, payload: dict) -> None:
        answer = self._session.post(url, json=payload, timeout=self.timeout_seconds)
        if answer.status_code == 429 or answer.status_code >= 500:
            raise _RetryableAnswer(f"HTTP {answer.status_code}")
        answer.raise_for_status()  # another 4xx: the message itself is refused; retrying cannot help
