"""Reading a YAML settings file: one place for the errors a user can fix."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from keepers.errors import SentinelError


def read_mapping(path: Path) -> Mapping[str, Any]:
    """The mapping at the top of a YAML file ({} for an empty file); one-line
    SentinelError naming the file and, for a syntax error, the line."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SentinelError(f"{path}: cannot read ({error.strerror}); check the path") from None
    except UnicodeDecodeError as error:
        raise SentinelError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except RecursionError:
        raise SentinelError(f"{path}: nested too deeply to be a settings file; fix its structure") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SentinelError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SentinelError(f"{path}: expected a mapping of settings at the top level")
    return raw
