"""The fault and durability tests reuse the keeper suite's local system
(tests/keepers/helpers_keeper.py) and the backtest command's loader
(tests/strategies/fixtures_backtest.py): those folders go on the import path here,
since pytest collects this folder before them."""

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / folder) for folder in ("keepers", "strategies")]
