"""Strategy 3, ``macd``: MACD signal-line crossovers confirmed by the histogram's sign."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from strategies.base import Action, SignalFrame, Strategy, StrategyParams
from strategies.indicators import macd, macd_warmup


class MacdParams(StrategyParams):
    """Parameters of ``macd``."""

    fast: int = Field(12, ge=2, description="fast EMA period in bars")
    slow: int = Field(26, ge=3, description="slow EMA period in bars")
    signal: int = Field(9, ge=2, description="signal-line EMA period in bars")
    confirm_bars: int = Field(
        2,
        ge=1,
        le=20,
        description="bars the histogram must keep its new sign before acting (1 = at the cross)",
    )
    full_confidence_pct: float = Field(
        1.0, gt=0, le=100, description="histogram size, in % of close, that gives confidence 1"
    )

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        return self


class MacdStrategy(Strategy):
    """Buy when MACD crosses above its signal line, sell when it crosses below.

    With the TA-Lib MACD(fast, slow, signal) and histogram = MACD - signal, a crossover
    is a change of the histogram's sign. It is confirmed when the histogram keeps the
    new sign for ``confirm_bars`` bars in a row, which filters one-bar whipsaws:

    - BUY  at bar t when histogram[t - confirm_bars] <= 0 and histogram > 0 on each of
      the bars t - confirm_bars + 1 .. t;
    - SELL at bar t when histogram[t - confirm_bars] >= 0 and histogram < 0 on each of
      those bars;
    - HOLD otherwise, and until the histogram exists ``confirm_bars`` bars back.

    Confidence is the histogram's size relative to price:
    |histogram| / close * 100 / full_confidence_pct, clipped to [0, 1].
    """

    id = 3
    name = "macd"
    Params = MacdParams

    @property
    def warmup(self) -> int:
        """Bars before a confirmed crossover can be seen."""
        return macd_warmup(self.params.slow, self.params.signal) + self.params.confirm_bars

    def signals(self, close: np.ndarray) -> SignalFrame:
        """BUY/SELL/HOLD per bar with confidence, plus the close and MACD columns."""
        p = self.params
        lines = macd(close, p.fast, p.slow, p.signal)
        prices = np.asarray(close, dtype=np.float64)
        histogram = lines.histogram
        held_above = _held(histogram > 0.0, p.confirm_bars)
        held_below = _held(histogram < 0.0, p.confirm_bars)
        before = np.full(len(histogram), np.nan)
        before[p.confirm_bars :] = histogram[: -p.confirm_bars]
        buy = held_above & (before <= 0.0)
        sell = held_below & (before >= 0.0)
        # Strengths only where a signal is: few bars, and never a NaN of the warm-up.
        trade = buy | sell
        confidence = np.zeros(len(prices))
        confidence[trade] = np.clip(
            np.abs(histogram[trade]) / prices[trade] * (100.0 / p.full_confidence_pct), 0.0, 1.0
        )
        return SignalFrame(
            action=buy.view(np.int8) - sell.view(np.int8),
            confidence=confidence,
            indicators={"close": prices, **lines._asdict()},
        )

    def explain(self, action: Action, indicators: dict[str, float]) -> str:
        """E.g. "MACD 152.3 crossed above signal 140.1 2 bars ago (histogram 12.2 > 0)"."""
        p = self.params
        histogram = indicators["histogram"]
        if np.isnan(histogram):
            return (
                f"warming up: MACD({p.fast}, {p.slow}, {p.signal}) needs "
                f"{macd_warmup(p.slow, p.signal) + 1} bars"
            )
        values = f"MACD {indicators['macd']:.6g} {{}} signal {indicators['signal']:.6g}"
        since = p.confirm_bars - 1
        ago = {0: "on this bar", 1: "1 bar ago"}.get(since, f"{since} bars ago")
        if action is Action.BUY:
            return f"{values.format('crossed above')} {ago} (histogram {histogram:.4g} > 0)"
        if action is Action.SELL:
            return f"{values.format('crossed below')} {ago} (histogram {histogram:.4g} < 0)"
        side = "above" if histogram > 0 else "below" if histogram < 0 else "at"
        return f"no confirmed crossover: {values.format(side)} (histogram {histogram:.4g})"


def _held(condition: np.ndarray, bars: int) -> np.ndarray:
    """True where ``condition`` holds on this bar and the ``bars - 1`` bars before it."""
    held = condition.copy()
    for lag in range(1, bars):
        held[lag:] &= condition[:-lag]
        held[:lag] = False
    return held
