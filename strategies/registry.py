"""The strategy registry: resolve a strategy by id or name and build it from parameters.

Every failure is a ``StrategyRegistryError`` whose message is one line naming the
strategy or parameter at fault and, for a misspelt name, the closest known one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from strategies.base import Strategy
from strategies.bollinger import BollingerStrategy
from strategies.macd import MacdStrategy
from strategies.rsi_sma import RsiSmaStrategy

STRATEGIES: tuple[type[Strategy], ...] = (RsiSmaStrategy, BollingerStrategy, MacdStrategy)
"""Every strategy, in id order."""


class StrategyRegistryError(ValueError):
    """An unknown strategy or parameter, or an invalid parameter value.

    ``field`` is where the problem is: "" for a strategy name, "<strategy>" for a rule
    between parameters, "<strategy>.<parameter>" for one parameter; ``reason`` is
    the rest of the one-line message.
    """

    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a strategy, as ``--list`` shows it."""

    name: str
    type: str
    default: Any
    constraints: str
    description: str


@dataclass(frozen=True)
class StrategyInfo:
    """One strategy, as ``--list`` shows it."""

    id: int
    name: str
    summary: str
    params: tuple[ParamInfo, ...]


def strategy_class(key: int | str) -> type[Strategy]:
    """The strategy class for an id (1, "1") or a name (case-insensitive)."""
    if isinstance(key, int) and not isinstance(key, bool):
        by_id = {cls.id: cls for cls in STRATEGIES}
        if key in by_id:
            return by_id[key]
    elif isinstance(key, str):
        text = key.strip()
        if text.isdigit():
            return strategy_class(int(text))
        by_name = {cls.name: cls for cls in STRATEGIES}
        if text.lower() in by_name:
            return by_name[text.lower()]
    known = ", ".join(f"{cls.id} {cls.name}" for cls in STRATEGIES)
    hint = did_you_mean(str(key).strip().lower(), [cls.name for cls in STRATEGIES])
    raise StrategyRegistryError(f"unknown strategy {key!r}{hint}; known: {known}")


def build_strategy(key: int | str, params: Mapping[str, Any] | None = None) -> Strategy:
    """A strategy resolved by ``key`` with ``params`` over its defaults, validated."""
    cls = strategy_class(key)
    params = dict(params or {})
    names = list(cls.Params.model_fields)
    for name in params:
        if name not in names:
            raise StrategyRegistryError(
                f"unknown parameter{did_you_mean(name, names)}; "
                f"{cls.name} takes {', '.join(names)}",
                f"{cls.name}.{name}",
            )
    try:
        return cls(**params)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join([cls.name, *map(str, error["loc"])])
        if error["loc"]:
            raise StrategyRegistryError(
                f"{error['msg']} (got {error['input']!r})", field
            ) from None
        raise StrategyRegistryError(error["msg"].removeprefix("Value error, "), field) from None


def list_strategies() -> list[StrategyInfo]:
    """Every strategy with its parameters, defaults, constraints and descriptions."""
    return [
        StrategyInfo(
            id=cls.id,
            name=cls.name,
            summary=(cls.__doc__ or "").strip().splitlines()[0],
            params=tuple(
                ParamInfo(
                    name=name,
                    type=getattr(field.annotation, "__name__", str(field.annotation)),
                    default=field.default,
                    constraints=", ".join(_constraint_text(field.metadata)),
                    description=field.description or "",
                )
                for name, field in cls.Params.model_fields.items()
            ),
        )
        for cls in STRATEGIES
    ]


def describe_strategies() -> str:
    """``list_strategies()`` as text for a terminal, one block per strategy."""
    lines = []
    for info in list_strategies():
        lines.append(f"{info.id}  {info.name}: {info.summary}")
        for param in info.params:
            kind = ", ".join(filter(None, [param.type, param.constraints]))
            lines.append(
                f"     {param.name} = {param.default!r}  ({kind})  {param.description}"
            )
    return "\n".join(lines)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest of ``choices`` to ``word``, or ""."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_BOUND_SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _constraint_text(metadata: Iterable[Any]) -> Iterable[str]:
    # pydantic keeps Field(ge=..., lt=...) as annotated_types objects named after them.
    for item in metadata:
        for attr, symbol in _BOUND_SYMBOLS.items():
            bound = getattr(item, attr, None)
            if bound is not None:
                yield f"{symbol} {bound:g}"
