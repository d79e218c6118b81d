"""Strategy 2, ``bollinger``: mean reversion at the Bollinger Bands."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from strategies.base import Action, SignalFrame, Strategy, StrategyParams
from strategies.indicators import bollinger_bands, bollinger_warmup


class BollingerParams(StrategyParams):
    """Parameters of ``bollinger``."""

    period: int = Field(20, ge=2, description="SMA and standard-deviation lookback in bars")
    nbdev: float = Field(
        2.0, gt=0, le=10, description="band distance from the SMA in standard deviations"
    )
    min_bandwidth: float = Field(
        0.1,
        ge=0,
        lt=10,
        description="trade only when (upper - lower) / middle is at least this (skip squeezes)",
    )

    @model_validator(mode="after")
    def _bands_can_be_crossed(self) -> BollingerParams:
        # A close is at most (period - 1) / sqrt(period) population standard
        # deviations from the mean of a window that contains it: wider bands never
        # see a close outside them, and the strategy would never trade.
        reach = (self.period - 1) / self.period**0.5
        if self.nbdev >= reach:
            raise ValueError(
                f"nbdev ({self.nbdev:g}) must be below {reach:.3g} for period {self.period}, "
                "or no close can ever leave the bands"
            )
        return self


class BollingerStrategy(Strategy):
    """Buy a close below the lower band, sell a close above the upper band.

    Rule at bar t, with the bands of ``bollinger_bands(close, period, nbdev)``,
    %B = (close - lower) / (upper - lower) and bandwidth = (upper - lower) / middle:

    - BUY  when %B < 0 (close below the lower band) and bandwidth >= min_bandwidth;
    - SELL when %B > 1 (close above the upper band) and bandwidth >= min_bandwidth;
    - HOLD otherwise, and until the bands exist.

    The bandwidth filter skips squeezes: when the bands are narrow a break out of them
    tends to start a trend rather than revert, and the way back to the middle band is
    too short to pay for the trade.

    Confidence is the distance past the band in standard deviations, one standard
    deviation giving full confidence: BUY -%B * 2 * nbdev, SELL (%B - 1) * 2 * nbdev
    (the band width is 2 * nbdev standard deviations), clipped to [0, 1].
    """

    id = 2
    name = "bollinger"
    Params = BollingerParams

    @property
    def warmup(self) -> int:
        """Bars before the bands are defined."""
        return bollinger_warmup(self.params.period)

    def signals(self, close: np.ndarray) -> SignalFrame:
        """BUY/SELL/HOLD per bar with confidence, plus the close and band columns."""
        p = self.params
        bands = bollinger_bands(close, p.period, p.nbdev)
        wide = bands.bandwidth >= p.min_bandwidth
        buy = (bands.percent_b < 0.0) & wide
        sell = (bands.percent_b > 1.0) & wide
        # Strengths only where a signal is: few bars, and never a NaN of the warm-up.
        deviations_per_band = 2.0 * p.nbdev
        confidence = np.zeros(len(buy))
        confidence[buy] = np.clip(-bands.percent_b[buy] * deviations_per_band, 0.0, 1.0)
        confidence[sell] = np.clip((bands.percent_b[sell] - 1.0) * deviations_per_band, 0.0, 1.0)
        return SignalFrame(
            action=buy.view(np.int8) - sell.view(np.int8),
            confidence=confidence,
            indicators={"close": np.asarray(close, dtype=np.float64), **bands._asdict()},
        )

    def explain(self, action: Action, indicators: dict[str, float]) -> str:
        """E.g. "close 95.2 < lower band 96.04 (%B -0.12) and bandwidth 0.184 >= 0.1"."""
        p = self.params
        close, percent_b = indicators["close"], indicators["percent_b"]
        if np.isnan(percent_b):
            return f"warming up: Bollinger({p.period}, {p.nbdev:g}) needs {self.warmup + 1} bars"
        width_text = f"bandwidth {indicators['bandwidth']:.3g}"
        if percent_b < 0.0:
            band_text = f"close {close:.6g} < lower band {indicators['lower']:.6g}"
        elif percent_b > 1.0:
            band_text = f"close {close:.6g} > upper band {indicators['upper']:.6g}"
        else:
            return f"close {close:.6g} inside the bands (%B {percent_b:.2f})"
        band_text += f" (%B {percent_b:.2f})"
        if action is Action.HOLD:
            return f"{band_text} but {width_text} < {p.min_bandwidth:g} (squeeze)"
        return f"{band_text} and {width_text} >= {p.min_bandwidth:g}"
