"""Which strategies run on which token, with which parameters: data/config/strategies.yaml.

The file has a ``defaults`` block and optional per-token blocks, each with
``enabled`` (strategy names or ids) and ``params`` (per strategy name, merged key by
key over the defaults' parameters). A token without a block, or without ``enabled``,
runs the default strategies. Loading builds every strategy through the registry, so
a config that loads is a config that runs; any problem is one ``StrategyConfigError``
line naming the file, the field and what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from strategies.base import Strategy
from strategies.registry import StrategyRegistryError, build_strategy, did_you_mean, strategy_class
from strategies.yaml_reader import read_yaml

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "config" / "strategies.yaml"


class StrategyConfigError(ValueError):
    """The strategy config file is missing, unreadable or invalid (one line)."""


class _StrategySet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Any entry: the registry resolves names and ids and words its own errors.
    enabled: list[Any] | None = None
    params: dict[str, dict[str, Any]] = {}


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: _StrategySet
    tokens: dict[str, _StrategySet | None] = {}


@dataclass(frozen=True)
class StrategyConfig:
    """The validated config: built strategies for the defaults and for each token."""

    defaults: tuple[Strategy, ...]
    tokens: Mapping[str, tuple[Strategy, ...]] = field(default_factory=dict)

    def strategies_for(self, token: str) -> tuple[Strategy, ...]:
        """The strategies to run on ``token`` (symbol, case-insensitive)."""
        return self.tokens.get(token.strip().upper(), self.defaults)


def load_strategy_config(path: str | Path = DEFAULT_PATH) -> StrategyConfig:
    """Read, validate and build ``path``; ``StrategyConfigError`` on any problem."""
    path = Path(path)
    raw = read_yaml(path, StrategyConfigError)
    try:
        return parse_strategy_config(raw)
    except StrategyConfigError as exc:
        raise StrategyConfigError(f"{path}: {exc}") from None


def parse_strategy_config(raw: Any) -> StrategyConfig:
    """Validate and build an already-parsed config document (a mapping)."""
    if not isinstance(raw, Mapping):
        raise StrategyConfigError(
            "the config must be a mapping with a 'defaults' block (and optional 'tokens')"
        )
    try:
        document = _ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise StrategyConfigError(_structure_problem(exc)) from None
    if document.defaults.enabled is None:
        raise StrategyConfigError("defaults.enabled: missing; list strategy names, e.g. [rsi_sma]")
    base_params = _params("defaults", document.defaults)
    # Default parameters of a strategy no default set enables must still be valid.
    _strategies("defaults", list(base_params), base_params)
    defaults = _strategies("defaults", _names("defaults", document.defaults.enabled), base_params)
    tokens: dict[str, tuple[Strategy, ...]] = {}
    for symbol, block in document.tokens.items():
        where = f"tokens.{symbol}"
        key = symbol.strip().upper()
        if not key:
            raise StrategyConfigError("tokens: a token symbol is empty; use e.g. 'ETH'")
        if key in tokens:
            raise StrategyConfigError(f"{where}: {key} is listed twice; merge the two blocks")
        block = block or _StrategySet()
        enabled = block.enabled if block.enabled is not None else document.defaults.enabled
        names = _names(where, enabled)
        own = _params(where, block)
        for name in own:
            if name not in names:
                raise StrategyConfigError(
                    f"{where}.params.{name}: {name} is not enabled for {symbol}; "
                    f"add it to {where}.enabled or remove these parameters"
                )
        merged = {name: {**base_params.get(name, {}), **own.get(name, {})} for name in names}
        tokens[key] = _strategies(where, names, merged)
    return StrategyConfig(defaults=defaults, tokens=tokens)


def _names(where: str, enabled: list[Any]) -> list[str]:
    """Registry names of the ``enabled`` entries, each at most once."""
    names = []
    for i, key in enumerate(enabled):
        name = _resolve(f"{where}.enabled[{i}]", key)
        if name in names:
            raise StrategyConfigError(f"{where}.enabled[{i}]: {name} is enabled twice; drop one")
        names.append(name)
    return names


def _params(where: str, block: _StrategySet) -> dict[str, dict[str, Any]]:
    """The block's parameters keyed by registry name."""
    return {
        _resolve(f"{where}.params.{key}", key): value for key, value in block.params.items()
    }


def _strategies(
    where: str, names: list[str], params: Mapping[str, Mapping[str, Any]]
) -> tuple[Strategy, ...]:
    """The named strategies built with their parameters, errors located at ``where``."""
    strategies = []
    for name in names:
        try:
            strategies.append(build_strategy(name, params.get(name, {})))
        except StrategyRegistryError as exc:
            raise StrategyConfigError(f"{where}.params.{exc.field}: {exc.reason}") from None
    return tuple(strategies)


def _resolve(where: str, key: Any) -> str:
    """The registry name of strategy ``key``, or a config error at ``where``."""
    try:
        return strategy_class(key).name
    except StrategyRegistryError as exc:
        raise StrategyConfigError(f"{where}: {exc.reason}") from None


def _structure_problem(exc: ValidationError) -> str:
    """The first structural error as "field: problem (fix)"."""
    error = exc.errors()[0]
    loc = error["loc"]
    location = _location(loc)
    if error["type"] == "extra_forbidden":
        allowed = _StrategySet.model_fields if len(loc) > 1 else _ConfigFile.model_fields
        hint = did_you_mean(str(loc[-1]), allowed)
        return f"{location}: unknown key{hint}; allowed here: {', '.join(allowed)}"
    if error["type"] == "missing":
        return f"{location}: missing; add it (see data/config/strategies.yaml for the layout)"
    if error["type"] == "model_type":
        wanted = "should be a mapping with 'enabled' and/or 'params'"
        return f"{location}: {wanted} (got {error['input']!r})"
    return f"{location}: {error['msg']} (got {error['input']!r})"


def _location(loc: tuple[int | str, ...]) -> str:
    """pydantic's ('tokens', 'ETH', 'enabled', 0) as "tokens.ETH.enabled[0]"."""
    text = ""
    for i, part in enumerate(loc):
        names_a_key = loc[i + 1 : i + 2] == ("[key]",)
        if part == "[key]":
            text += " (the key)"
        elif isinstance(part, int) and not names_a_key:
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"

