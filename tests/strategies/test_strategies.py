"""The three strategies: their rules against TA-Lib, no look-ahead, confidence, reasons."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from strategies.base import Action, Strategy
from strategies.bollinger import BollingerStrategy
from strategies.macd import MacdStrategy
from strategies.registry import STRATEGIES
from strategies.rsi_sma import RsiSmaStrategy

TOKENS = ["BTC", "ETH", "LTC"]

# Short periods, so that a few hundred random bars hold every kind of signal.
QUICK = [
    RsiSmaStrategy(rsi_period=2, sma_period=10, oversold=30, overbought=70),
    BollingerStrategy(period=8, nbdev=1.5, min_bandwidth=0.0),
    MacdStrategy(fast=3, slow=6, signal=2, confirm_bars=1),
    MacdStrategy(fast=3, slow=6, signal=2, confirm_bars=3),
]
DEFAULTS = [cls() for cls in STRATEGIES]


def bar(frame, t: int) -> tuple:
    """Everything ``signals`` says about bar ``t``, comparable with NaN as equal."""
    return (
        int(frame.action[t]),
        float(frame.confidence[t]),
        {name: np.float64(values[t]).tobytes() for name, values in frame.indicators.items()},
    )


# --- the interface contract ----------------------------------------------------------


@pytest.mark.parametrize("strategy", DEFAULTS, ids=lambda s: s.name)
@pytest.mark.parametrize("token", TOKENS)
def test_signal_frame_contract_on_sample_prices(sample_closes, strategy, token):
    close = sample_closes[token]
    frame = strategy.signals(close)
    assert len(frame) == len(close)
    assert frame.action.dtype == np.int8
    assert set(np.unique(frame.action)) <= {Action.SELL, Action.HOLD, Action.BUY}
    assert ((frame.confidence >= 0.0) & (frame.confidence <= 1.0)).all()
    trading = frame.action != Action.HOLD
    assert (frame.confidence[~trading] == 0.0).all()
    assert (frame.confidence[trading] > 0.0).all()
    assert (frame.action[: strategy.warmup] == Action.HOLD).all()
    # The defaults trade on real data, both ways.
    assert (frame.action == Action.BUY).sum() >= 10 and (frame.action == Action.SELL).sum() >= 10
    for values in frame.indicators.values():
        assert values.dtype == np.float64 and values.shape == close.shape
    np.testing.assert_array_equal(frame.indicators["close"], close)


@pytest.mark.parametrize(
    ("strategy", "needed"),
    [
        (RsiSmaStrategy(rsi_period=14, sma_period=5), ["rsi", "sma"]),
        (RsiSmaStrategy(rsi_period=3, sma_period=50), ["rsi", "sma"]),
        (BollingerStrategy(period=20), ["percent_b", "bandwidth"]),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_warmup_ends_where_the_indicators_begin(sample_closes, strategy, needed):
    frame = strategy.signals(sample_closes["BTC"])
    for name in needed:
        assert not np.isnan(frame.indicators[name][strategy.warmup])
    assert any(np.isnan(frame.indicators[name][strategy.warmup - 1]) for name in needed)


def test_macd_warmup_includes_the_confirmation_bars(sample_closes):
    strategy = MacdStrategy(confirm_bars=3)
    histogram = strategy.signals(sample_closes["BTC"]).indicators["histogram"]
    # The first confirmed crossover needs the histogram confirm_bars bars back.
    assert strategy.warmup == 33 + 3
    assert not np.isnan(histogram[strategy.warmup - 3]) and np.isnan(histogram[strategy.warmup - 4])


# --- no look-ahead ---------------------------------------------------------------------


@pytest.mark.parametrize("strategy", QUICK + DEFAULTS, ids=lambda s: f"{s.name}{s.params}")
@settings(max_examples=60, deadline=None)
@given(
    returns=st.lists(st.floats(-0.15, 0.15), min_size=1, max_size=300),
    data=st.data(),
)
def test_a_bar_depends_only_on_the_past(strategy, returns, data):
    close = 100.0 * np.exp(np.cumsum(returns))
    t = data.draw(st.integers(0, len(close) - 1), label="t")
    assert bar(strategy.signals(close[: t + 1]), t) == bar(strategy.signals(close), t)


@pytest.mark.parametrize("strategy", QUICK + DEFAULTS, ids=lambda s: f"{s.name}{s.params}")
def test_no_look_ahead_on_sample_prices(sample_closes, strategy):
    close = sample_closes["ETH"]
    full = strategy.signals(close)
    for t in range(0, len(close), 23):
        assert bar(strategy.signals(close[: t + 1]), t) == bar(full, t)


def test_the_quick_strategies_do_signal_in_a_few_hundred_bars(sample_closes):
    # Guards the Hypothesis test above against comparing HOLDs only.
    close = sample_closes["BTC"][:300]
    for strategy in QUICK:
        actions = strategy.signals(close).action
        assert (actions == Action.BUY).any() and (actions == Action.SELL).any()


# --- each rule, recomputed from TA-Lib ----------------------------------------------------


@pytest.mark.parametrize("token", TOKENS)
def test_rsi_sma_rule(sample_closes, token):
    close = sample_closes[token]
    strategy = RsiSmaStrategy()
    p = strategy.params
    rsi = talib.RSI(close, p.rsi_period)
    sma = talib.SMA(close, p.sma_period)
    buy = (rsi < p.oversold) & (close > sma)
    sell = (rsi > p.overbought) & (close < sma)
    frame = strategy.signals(close)
    np.testing.assert_array_equal(frame.action == Action.BUY, buy)
    np.testing.assert_array_equal(frame.action == Action.SELL, sell)
    expected = np.zeros(len(close))
    expected[buy] = (p.oversold - rsi[buy]) / p.oversold
    expected[sell] = (rsi[sell] - p.overbought) / (100.0 - p.overbought)
    np.testing.assert_allclose(frame.confidence, expected)


@pytest.mark.parametrize("token", TOKENS)
def test_bollinger_rule(sample_closes, token):
    close = sample_closes[token]
    strategy = BollingerStrategy()
    p = strategy.params
    upper, middle, lower = talib.BBANDS(close, p.period, p.nbdev, p.nbdev)
    percent_b = (close - lower) / (upper - lower)
    wide = (upper - lower) / middle >= p.min_bandwidth
    buy = (percent_b < 0.0) & wide
    sell = (percent_b > 1.0) & wide
    frame = strategy.signals(close)
    np.testing.assert_array_equal(frame.action == Action.BUY, buy)
    np.testing.assert_array_equal(frame.action == Action.SELL, sell)
    # One standard deviation past the band is full confidence.
    deviation = (upper - middle) / p.nbdev
    past_band = np.zeros(len(close))
    past_band[buy] = (lower - close)[buy] / deviation[buy]
    past_band[sell] = (close - upper)[sell] / deviation[sell]
    np.testing.assert_allclose(frame.confidence, np.minimum(past_band, 1.0))
    assert (frame.confidence == 1.0).any() and (frame.confidence[buy | sell] < 1.0).any()


def test_bollinger_bandwidth_filter_skips_squeezes(sample_closes):
    close = sample_closes["BTC"]
    loose = BollingerStrategy(min_bandwidth=0.0).signals(close)
    strict = BollingerStrategy(min_bandwidth=0.12).signals(close)
    squeezed = loose.indicators["bandwidth"] < 0.12
    assert (loose.action[squeezed] != Action.HOLD).any()
    assert (strict.action[squeezed] == Action.HOLD).all()
    np.testing.assert_array_equal(strict.action[~squeezed], loose.action[~squeezed])


@pytest.mark.parametrize("confirm_bars", [1, 2, 4])
@pytest.mark.parametrize("token", TOKENS)
def test_macd_rule(sample_closes, token, confirm_bars):
    close = sample_closes[token]
    strategy = MacdStrategy(confirm_bars=confirm_bars)
    p = strategy.params
    histogram = talib.MACD(close, p.fast, p.slow, p.signal)[2]
    buy = np.zeros(len(close), dtype=bool)
    sell = np.zeros(len(close), dtype=bool)
    for t in range(confirm_bars, len(close)):
        since_cross = histogram[t - confirm_bars + 1 : t + 1]
        buy[t] = histogram[t - confirm_bars] <= 0.0 and (since_cross > 0.0).all()
        sell[t] = histogram[t - confirm_bars] >= 0.0 and (since_cross < 0.0).all()
    frame = strategy.signals(close)
    np.testing.assert_array_equal(frame.action == Action.BUY, buy)
    np.testing.assert_array_equal(frame.action == Action.SELL, sell)
    expected = np.where(buy | sell, np.abs(histogram) / close * 100.0 / p.full_confidence_pct, 0.0)
    np.testing.assert_allclose(frame.confidence, np.minimum(expected, 1.0))


# --- flat, broken and tiny inputs ------------------------------------------------------


@pytest.mark.parametrize("strategy", QUICK + DEFAULTS, ids=lambda s: f"{s.name}{s.params}")
def test_constant_prices_only_hold(strategy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = strategy.signals(np.full(400, 42.0))
    assert (frame.action == Action.HOLD).all() and (frame.confidence == 0.0).all()


@pytest.mark.parametrize("strategy", DEFAULTS, ids=lambda s: s.name)
@pytest.mark.parametrize("length", [0, 1, 10])
def test_short_histories_only_hold(strategy, length):
    frame = strategy.signals(np.linspace(10.0, 20.0, length))
    assert len(frame) == length and (frame.action == Action.HOLD).all()


@pytest.mark.parametrize("strategy", DEFAULTS, ids=lambda s: s.name)
def test_missing_prices_are_rejected(strategy):
    close = np.linspace(10.0, 20.0, 300)
    close[123] = np.nan
    with pytest.raises(ValueError, match=r"close\[123\] is nan"):
        strategy.signals(close)


# --- parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (RsiSmaStrategy, {"rsi_period": 1}, "greater than or equal to 2"),
        (RsiSmaStrategy, {"sma_period": 0}, "greater than or equal to 2"),
        (RsiSmaStrategy, {"oversold": 0}, "greater than 0"),
        (RsiSmaStrategy, {"overbought": 100}, "less than 100"),
        (RsiSmaStrategy, {"oversold": 70, "overbought": 30}, r"oversold \(70\) must be below"),
        (RsiSmaStrategy, {"oversold": 50, "overbought": 50}, r"oversold \(50\) must be below"),
        (BollingerStrategy, {"period": 1}, "greater than or equal to 2"),
        (BollingerStrategy, {"nbdev": 0}, "greater than 0"),
        (BollingerStrategy, {"min_bandwidth": -0.1}, "greater than or equal to 0"),
        (BollingerStrategy, {"period": 5}, r"nbdev \(2\) must be below 1.79 for period 5"),
        (MacdStrategy, {"fast": 26, "slow": 12}, r"fast \(26\) must be below slow \(12\)"),
        (MacdStrategy, {"fast": 12, "slow": 12}, r"fast \(12\) must be below slow \(12\)"),
        (MacdStrategy, {"signal": 1}, "greater than or equal to 2"),
        (MacdStrategy, {"confirm_bars": 0}, "greater than or equal to 1"),
        (MacdStrategy, {"full_confidence_pct": 0}, "greater than 0"),
        (MacdStrategy, {"fast": 2.5}, "valid integer"),
        (BollingerStrategy, {"bogus": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_parameters_are_rejected(cls, params, message):
    with pytest.raises(ValidationError, match=message):
        cls(**params)


@pytest.mark.parametrize("cls", STRATEGIES)
def test_parameters_have_defaults_descriptions_and_are_frozen(cls):
    strategy = cls()
    for name, field in cls.Params.model_fields.items():
        assert field.description and getattr(strategy.params, name) == field.default
    with pytest.raises(ValidationError):
        strategy.params.__setattr__(next(iter(cls.Params.model_fields)), 3)


# --- reasons and the live view --------------------------------------------------------


RSI_SMA_14_50 = RsiSmaStrategy(rsi_period=14, sma_period=50, oversold=30, overbought=70)
BANDS = {"close": 95.2, "lower": 96.04, "upper": 110.0, "middle": 103.0, "bandwidth": 0.184}
LINES = {"close": 3000.0, "macd": 12.5, "signal": 10.25}


@pytest.mark.parametrize(
    ("strategy", "action", "values", "reason"),
    [
        (
            RSI_SMA_14_50,
            Action.BUY,
            {"rsi": 24.1, "close": 101.2, "sma": 98.7},
            "RSI 24.1 < 30 (oversold) and close 101.2 > SMA50 98.7 (uptrend)",
        ),
        (
            RSI_SMA_14_50,
            Action.SELL,
            {"rsi": 81.26, "close": 95.0, "sma": 98.7},
            "RSI 81.3 > 70 (overbought) and close 95 < SMA50 98.7 (downtrend)",
        ),
        (
            RSI_SMA_14_50,
            Action.HOLD,
            {"rsi": 24.1, "close": 95.0, "sma": 98.7},
            "RSI 24.1 < 30 (oversold) but close 95 <= SMA50 98.7 (no uptrend)",
        ),
        (
            RSI_SMA_14_50,
            Action.HOLD,
            {"rsi": 75.0, "close": 101.0, "sma": 98.7},
            "RSI 75.0 > 70 (overbought) but close 101 >= SMA50 98.7 (no downtrend)",
        ),
        (
            RSI_SMA_14_50,
            Action.HOLD,
            {"rsi": 50.0, "close": 101.0, "sma": 98.7},
            "RSI 50.0 within 30..70 (neutral)",
        ),
        (
            RSI_SMA_14_50,
            Action.HOLD,
            {"rsi": 50.0, "close": 101.0, "sma": np.nan},
            "warming up: RSI14 and SMA50 need 50 bars",
        ),
        (
            BollingerStrategy(),
            Action.BUY,
            {**BANDS, "percent_b": -0.12},
            "close 95.2 < lower band 96.04 (%B -0.12) and bandwidth 0.184 >= 0.1",
        ),
        (
            BollingerStrategy(),
            Action.HOLD,
            {**BANDS, "percent_b": -0.12, "bandwidth": 0.05},
            "close 95.2 < lower band 96.04 (%B -0.12) but bandwidth 0.05 < 0.1 (squeeze)",
        ),
        (
            BollingerStrategy(),
            Action.SELL,
            {**BANDS, "close": 111.5, "percent_b": 1.11},
            "close 111.5 > upper band 110 (%B 1.11) and bandwidth 0.184 >= 0.1",
        ),
        (
            BollingerStrategy(),
            Action.HOLD,
            {**BANDS, "close": 100.0, "percent_b": 0.3},
            "close 100 inside the bands (%B 0.30)",
        ),
        (
            BollingerStrategy(),
            Action.HOLD,
            {**BANDS, "percent_b": np.nan},
            "warming up: Bollinger(20, 2) needs 20 bars",
        ),
        (
            MacdStrategy(),
            Action.BUY,
            {**LINES, "histogram": 2.25},
            "MACD 12.5 crossed above signal 10.25 1 bar ago (histogram 2.25 > 0)",
        ),
        (
            MacdStrategy(confirm_bars=1),
            Action.SELL,
            {**LINES, "macd": 9.0, "histogram": -1.25},
            "MACD 9 crossed below signal 10.25 on this bar (histogram -1.25 < 0)",
        ),
        (
            MacdStrategy(confirm_bars=4),
            Action.SELL,
            {**LINES, "macd": 9.0, "histogram": -1.25},
            "MACD 9 crossed below signal 10.25 3 bars ago (histogram -1.25 < 0)",
        ),
        (
            MacdStrategy(),
            Action.HOLD,
            {**LINES, "histogram": 2.25},
            "no confirmed crossover: MACD 12.5 above signal 10.25 (histogram 2.25)",
        ),
        (
            MacdStrategy(),
            Action.HOLD,
            {**LINES, "histogram": np.nan},
            "warming up: MACD(12, 26, 9) needs 34 bars",
        ),
    ],
)
def test_reasons(strategy, action, values, reason):
    assert strategy.explain(action, values) == reason


@pytest.mark.parametrize("strategy", DEFAULTS, ids=lambda s: s.name)
@pytest.mark.parametrize("wanted", [Action.BUY, Action.SELL])
def test_signal_now_is_the_last_bar_with_its_reason(sample_closes, strategy, wanted):
    close = sample_closes["BTC"]
    frame = strategy.signals(close)
    t = int(np.flatnonzero(frame.action == wanted)[-1])
    signal = strategy.signal_now(close[: t + 1])
    assert signal.action is wanted
    assert signal.confidence == frame.confidence[t]
    assert signal.indicators == {name: values[t] for name, values in frame.indicators.items()}
    assert signal.reason == strategy.explain(wanted, signal.indicators)
    assert "warming up" not in signal.reason and "\n" not in signal.reason


def test_every_strategy_is_a_strategy_with_an_id_and_a_name():
    assert [cls.id for cls in STRATEGIES] == [1, 2, 3]
    assert [cls.name for cls in STRATEGIES] == ["rsi_sma", "bollinger", "macd"]
    assert all(issubclass(cls, Strategy) and cls.__doc__ for cls in STRATEGIES)
