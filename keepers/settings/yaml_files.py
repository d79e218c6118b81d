"""Reading a YAML settings file of the keepers: a mapping at the top, or one line saying what to fix."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keepers.base.errors import SentinelError
from strategies.yaml_reader import read_yaml


def read_mapping(path: Path) -> Mapping[str, Any]:
    """The mapping at the top of a YAML file ({} for an empty file); one-line
    SentinelError naming the file and, for a syntax error, the line."""
    raw = read_yaml(path, SentinelError)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SentinelError(f"{path}: expected a mapping of settings at the top level")
    return raw
