"""ABIs and bytecode that npm packages ship compiled, used as they are (never copied).

Each file is read once per process: scripts and keepers ask for the same ABIs often.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from keepers import PROJECT_ROOT

NODE_MODULES = PROJECT_ROOT / "node_modules"
AGGREGATOR_V3_ABI = "@chainlink/contracts/abi/v0.8/AggregatorV3Interface.json"


class ArtifactNotFoundError(FileNotFoundError):
    """An npm artifact is missing: the npm packages are not installed."""


@functools.cache
def npm_artifact(relative_path: str) -> Any:
    """The parsed JSON of ``node_modules/<relative_path>``."""
    path = NODE_MODULES / relative_path
    if not path.is_file():
        raise ArtifactNotFoundError(f"{path} is missing: run `make setup` (npm packages) first")
    return json.loads(path.read_text())


def npm_abi(relative_path: str) -> list[dict]:
    """The ABI in an npm artifact: a bare ABI list, or a build file's ``abi`` entry."""
    artifact = npm_artifact(relative_path)
    return artifact if isinstance(artifact, list) else artifact["abi"]
