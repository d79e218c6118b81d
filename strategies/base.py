"""The one strategy interface shared by the live keeper and the backtester.

A strategy computes its signals for a whole close-price array at once. The live
keeper's "signal now" is the last bar of that same computation, so live trading and
backtests cannot disagree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict


class Action(IntEnum):
    """What a strategy wants to do at a bar; the values are the position direction."""

    SELL = -1
    HOLD = 0
    BUY = 1


@dataclass(frozen=True)
class SignalFrame:
    """Signals for every bar of a price array.

    ``action`` holds ``Action`` values as int8; ``confidence`` is in [0, 1] and 0.0
    wherever the action is HOLD; ``indicators`` maps a column name to an array of the
    same length (NaN during warm-up).
    """

    action: np.ndarray
    confidence: np.ndarray
    indicators: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.action)


@dataclass(frozen=True)
class Signal:
    """One bar's signal, as the live keeper records it."""

    action: Action
    confidence: float
    reason: str
    indicators: dict[str, float]


class StrategyParams(BaseModel):
    """Base for a strategy's typed parameters: unknown names are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Strategy(ABC):
    """A trading rule over close prices.

    Subclasses set ``id``, ``name``, ``Params`` (a ``StrategyParams`` subclass with
    defaults and validation) and implement ``signals`` and ``explain``.
    """

    id: ClassVar[int]
    name: ClassVar[str]
    Params: ClassVar[type[StrategyParams]]

    def __init__(self, **params: Any) -> None:
        self.params = self.Params(**params)

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Number of leading bars on which the strategy can only answer HOLD."""

    @abstractmethod
    def signals(self, close: np.ndarray) -> SignalFrame:
        """Signals for every bar; bar ``t`` depends on ``close[: t + 1]`` only."""

    @abstractmethod
    def explain(self, action: Action, indicators: dict[str, float]) -> str:
        """A human-readable reason for ``action`` given one bar's indicator values."""

    def signal_now(self, close: np.ndarray) -> Signal:
        """The last bar of ``signals(close)`` with its reason: the live keeper's view."""
        frame = self.signals(close)
        last = {name: float(values[-1]) for name, values in frame.indicators.items()}
        action = Action(int(frame.action[-1]))
        return Signal(
            action=action,
            confidence=float(frame.confidence[-1]),
            reason=self.explain(action, last),
            indicators=last,
        )
