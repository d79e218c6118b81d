"""Reading a YAML file a user writes: one place for the errors they can fix. Used by the
strategy config here and by the keepers' settings files (keepers/settings/yaml_files.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """The parsed document at ``path``; ``error`` with one line naming the file and what
    to fix (a missing file, not UTF-8, nested too deeply, a syntax error and its line)."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except RecursionError:
        raise error(f"{path}: nested too deeply to be a settings file; fix its structure") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        raise error(f"{path}: not valid YAML{line}: {problem}") from None
