"""A keeper loads its strategies' compiled kernels at start (keepers/engine/startup.py):
its first signal on a bar's closes then compiles nothing more. In a fresh interpreter:
in this one, earlier tests compiled them already."""

from __future__ import annotations

import subprocess
import sys

FIRST_SIGNAL = """
import numpy as np
from numba.core.registry import CPUDispatcher
import strategies.indicators as indicators
from keepers.engine.startup import load_compiled
from strategies.registry import BollingerStrategy, MacdStrategy, RsiSmaStrategy

def compiled():
    return {name: len(kernel.signatures) for name, kernel in vars(indicators).items()
            if isinstance(kernel, CPUDispatcher)}

chosen = (BollingerStrategy(), MacdStrategy(), RsiSmaStrategy())
if sys.argv[1] == "start":
    load_compiled({("alice", "WETH"): chosen, ("bob", "WBTC"): (BollingerStrategy(nbdev=2.5),)})
before = compiled()
closes = 100 + np.cumsum(np.random.default_rng(24).normal(0, 1, 300))
closes.flags.writeable = False  # as the cycle's closes are
for strategy in chosen:
    strategy.signal_now(closes)
print(sum(compiled().values()) - sum(before.values()))
"""


def kernels_compiled_by_the_first_signal(start: bool) -> int:
    done = subprocess.run([sys.executable, "-c", "import sys\n" + FIRST_SIGNAL, "start" if start else "cold"],
                          capture_output=True, text=True, check=True, timeout=300)
    return int(done.stdout.split()[-1])


def test_after_the_start_a_first_signal_on_read_only_closes_compiles_nothing():
    assert kernels_compiled_by_the_first_signal(start=False) > 0  # without it, the first cycle compiles
    assert kernels_compiled_by_the_first_signal(start=True) == 0
