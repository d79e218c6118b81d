"""What the benchmarks share: a median timer and a private plain anvil for Ape.

Each benchmark is run as a script (`python bench/<name>.py`), so this folder is on
`sys.path` and they import it as `harness`.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``call`` in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextlib.contextmanager
def ape_on_private_anvil(*anvil_arguments: str) -> Iterator[None]:
    """A plain anvil (as `make run` starts it: ape-foundry's own anvil traces every step
    and is several times slower) started with ``anvil_arguments``, Ape connected to it,
    Ape's INFO lines quieted; the anvil is stopped by its process id afterwards."""
    sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "keepers"), str(ROOT / "tests" / "e2e")]
    from helpers_e2e import AnvilProcesses  # the tests' own anvil launcher

    nodes = AnvilProcesses(Path(tempfile.mkdtemp(prefix="bench-anvil-")))
    try:
        os.environ["APE_FOUNDRY_HOST"] = nodes.start(*anvil_arguments)
        from ape import networks
        from ape.logging import logger

        logger.set_level("WARNING")
        with networks.parse_network_choice("ethereum:local:foundry"):
            yield
    finally:
        nodes.stop_all()
