"""The keeper's clocks: the wall clock (heartbeats, leases, cycle records) and the
readable form of a block timestamp. Rules of the strategies never read either."""

from __future__ import annotations

from datetime import UTC, datetime


def now_utc() -> datetime:
    """The wall-clock time, aware UTC."""
    return datetime.now(UTC)


def utc(timestamp: int) -> str:
    """A block timestamp as readable UTC time."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
