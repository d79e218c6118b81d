"""The fault and durability tests reuse the keeper suite's local system
(tests/keepers/helpers_keeper.py): its folder goes on the import path here, since
pytest collects this folder before tests/keepers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "keepers"))
