"""Named points of a cycle where a fault-injection test may kill the keeper.

``checkpoint(name)`` does nothing unless ``SENTINEL_CRASH_AT`` names this checkpoint,
in which case the process kills itself with SIGKILL (no cleanup, no flush: a real
crash). The tests use it to prove that a crash at each point leaves a store that the
next start repairs; in normal runs the variable is unset and the call is a lookup.
The checkpoints, in a cycle's order: after_price_read, after_risk_check (keepers/engine/cycle.py),
after_intent, after_sent_stored, after_broadcast, after_mined (keepers/engine/journal.py);
after_batch_sent: every trade of a batch in flight, none settled (keepers/engine/pipeline.py).
"""

from __future__ import annotations

import os
import signal


def checkpoint(name: str) -> None:
    """Dies here if SENTINEL_CRASH_AT names this checkpoint."""
    if os.environ.get("SENTINEL_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
