"""The fault and durability tests reuse the keeper suite's local system
(tests/keepers/helpers_keeper.py) and the backtest command's loader
(tests/strategies/fixtures_backtest.py): those folders go on the import path here,
since pytest collects this folder before them. The keeper fault scenarios' fixtures
(one deployed system per module, a fresh store per test) come from keeper_faults.py."""

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / folder) for folder in ("keepers", "strategies")]

from keeper_faults import run, system  # noqa: E402, F401 - fixtures of the keeper fault scenarios
