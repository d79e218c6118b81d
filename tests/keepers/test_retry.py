"""RPC reads retried with capped backoff on transport failures only."""

from __future__ import annotations

import pytest
import requests

from keepers.base.retry import with_retries


def flaky(failures: list[BaseException], result="ok"):
    calls = []

    def action():
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result

    return action, calls


def test_transport_failures_are_retried_with_doubling_capped_waits():
    waits: list[float] = []
    action, calls = flaky([requests.ConnectionError(), ConnectionResetError(), requests.Timeout(), TimeoutError()])
    assert with_retries(action, attempts=5, first_delay=0.5, max_delay=1.5, sleep=waits.append) == "ok"
    assert len(calls) == 5 and waits == [0.5, 1.0, 1.5, 1.5]


def test_the_last_failure_is_raised_after_the_attempts():
    action, calls = flaky([requests.ConnectionError("down")] * 3)
    with pytest.raises(requests.ConnectionError, match="down"):
        with_retries(action, attempts=3, sleep=lambda _: None)
    assert len(calls) == 3


def test_an_answer_from_the_node_is_never_retried():
    action, calls = flaky([ValueError("execution reverted")])
    with pytest.raises(ValueError):
        with_retries(action, sleep=lambda _: None)
    assert len(calls) == 1
