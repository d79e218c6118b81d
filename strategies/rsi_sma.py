"""Strategy 1, ``rsi_sma``: RSI extremes traded only in the direction of the SMA trend."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from strategies.base import Action, SignalFrame, Strategy, StrategyParams
from strategies.indicators import rsi, rsi_warmup, sma, sma_warmup


class RsiSmaParams(StrategyParams):
    """Parameters of ``rsi_sma``."""

    rsi_period: int = Field(2, ge=2, description="RSI lookback in bars (Wilder smoothing)")
    sma_period: int = Field(200, ge=2, description="SMA lookback in bars that defines the trend")
    oversold: float = Field(10.0, gt=0, lt=100, description="RSI below this is oversold (BUY zone)")
    overbought: float = Field(
        90.0, gt=0, lt=100, description="RSI above this is overbought (SELL zone)"
    )

    @model_validator(mode="after")
    def _oversold_below_overbought(self) -> RsiSmaParams:
        if self.oversold >= self.overbought:
            raise ValueError(
                f"oversold ({self.oversold:g}) must be below overbought ({self.overbought:g})"
            )
        return self


class RsiSmaStrategy(Strategy):
    """Buy oversold dips in an uptrend, sell overbought rallies in a downtrend.

    Rule at bar t, with RSI = rsi(close, rsi_period) and SMA = sma(close, sma_period):

    - BUY  when RSI < oversold   and close > SMA (the dip is against an uptrend);
    - SELL when RSI > overbought and close < SMA (the rally is against a downtrend);
    - HOLD otherwise, and until both indicators exist.

    The defaults are Connors' RSI(2) pullback rule (RSI 2 < 10 above the 200-bar SMA),
    made symmetric for exits. A slow RSI rarely reaches its extremes against the trend:
    RSI 14 at 30/70 with a 50-bar SMA never fires on the sample BTC/ETH/LTC data.

    Confidence is how far RSI is past its threshold, as a share of the room left:
    BUY (oversold - RSI) / oversold, SELL (RSI - overbought) / (100 - overbought),
    clipped to [0, 1]. A market that has not moved at all reads RSI 50 (neutral)
    here, not TA-Lib's 0, so that flat prices never look oversold.
    """

    id = 1
    name = "rsi_sma"
    Params = RsiSmaParams

    @property
    def warmup(self) -> int:
        """Bars before both RSI and SMA are defined."""
        return max(rsi_warmup(self.params.rsi_period), sma_warmup(self.params.sma_period))

    def signals(self, close: np.ndarray) -> SignalFrame:
        """BUY/SELL/HOLD per bar with confidence, plus the close, RSI and SMA columns."""
        p = self.params
        rsi_values = rsi(close, p.rsi_period, flat_value=50.0)
        sma_values = sma(close, p.sma_period)
        prices = np.asarray(close, dtype=np.float64)
        buy = (rsi_values < p.oversold) & (prices > sma_values)
        sell = (rsi_values > p.overbought) & (prices < sma_values)
        # Strengths only where a signal is: few bars, and never a NaN of the warm-up.
        confidence = np.zeros(len(prices))
        confidence[buy] = np.clip((p.oversold - rsi_values[buy]) / p.oversold, 0.0, 1.0)
        confidence[sell] = np.clip(
            (rsi_values[sell] - p.overbought) / (100.0 - p.overbought), 0.0, 1.0
        )
        return SignalFrame(
            action=buy.view(np.int8) - sell.view(np.int8),
            confidence=confidence,
            indicators={"close": prices, "rsi": rsi_values, "sma": sma_values},
        )

    def explain(self, action: Action, indicators: dict[str, float]) -> str:
        """E.g. "RSI 24.1 < 30 (oversold) and close 101.2 > SMA50 98.7 (uptrend)"."""
        p = self.params
        value, close, trend = indicators["rsi"], indicators["close"], indicators["sma"]
        if np.isnan(value) or np.isnan(trend):
            return (
                f"warming up: RSI{p.rsi_period} and SMA{p.sma_period} "
                f"need {self.warmup + 1} bars"
            )
        rsi_text = f"RSI {value:.1f}"
        sma_text = f"SMA{p.sma_period} {trend:.6g}"
        if action is Action.BUY:
            return (
                f"{rsi_text} < {p.oversold:g} (oversold) and "
                f"close {close:.6g} > {sma_text} (uptrend)"
            )
        if action is Action.SELL:
            return (
                f"{rsi_text} > {p.overbought:g} (overbought) and "
                f"close {close:.6g} < {sma_text} (downtrend)"
            )
        if value < p.oversold:
            return (
                f"{rsi_text} < {p.oversold:g} (oversold) but "
                f"close {close:.6g} <= {sma_text} (no uptrend)"
            )
        if value > p.overbought:
            return (
                f"{rsi_text} > {p.overbought:g} (overbought) but "
                f"close {close:.6g} >= {sma_text} (no downtrend)"
            )
        return f"{rsi_text} within {p.oversold:g}..{p.overbought:g} (neutral)"
