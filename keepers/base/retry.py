"""Retries of RPC reads that failed because the node could not be reached.

Only transport failures are retried (connection refused or reset, timeouts); an
answer from the node, such as a revert, is never retried. The wait doubles from
``first_delay`` up to ``max_delay``; after ``attempts`` tries the last error is raised.
Other callers (webhooks) name what else counts as transient with ``retry_on``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import requests
from ape.exceptions import ProviderNotConnectedError

T = TypeVar("T")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    ConnectionError,
    TimeoutError,
    ProviderNotConnectedError,
)


def with_retries(
    action: Callable[[], T], *, attempts: int = 5, first_delay: float = 0.25, max_delay: float = 4.0,
    sleep: Callable[[float], None] = time.sleep, retry_on: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
) -> T:
    """``action()``, retried with capped exponential backoff on ``retry_on`` (transport failures)."""
    delay = first_delay
    attempt = 1
    while True:
        try:
            return action()
        except retry_on:
            if attempt >= attempts:
                raise
            sleep(delay)
            delay = min(delay * 2, max_delay)
            attempt += 1
