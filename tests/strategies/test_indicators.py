"""Indicators against TA-Lib itself, plus the edge cases TA-Lib leaves to the caller."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from strategies.indicators import (
    bollinger_bands,
    bollinger_warmup,
    ema,
    ema_warmup,
    macd,
    macd_warmup,
    rsi,
    rsi_warmup,
    sma,
    sma_warmup,
)

RTOL = 1e-9
PERIODS = [2, 3, 5, 14, 20, 50, 200]
MACD_SETTINGS = [(12, 26, 9), (5, 35, 5), (3, 10, 1), (2, 3, 2), (19, 39, 9)]


def assert_matches(ours: np.ndarray, reference: np.ndarray, atol: float = 0.0) -> None:
    """Same NaN warm-up, then equal to ``RTOL`` relative (or ``atol`` absolute)."""
    assert ours.dtype == np.float64 and ours.shape == reference.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    defined = ~np.isnan(reference)
    np.testing.assert_allclose(ours[defined], reference[defined], rtol=RTOL, atol=atol)


def assert_macd_matches(close: np.ndarray, fast: int, slow: int, signal: int) -> None:
    # MACD values are differences of price-scale EMAs, so their rounding is
    # price-scale: near a zero crossing a relative bound alone would compare noise.
    atol = 1e-12 * float(np.max(np.abs(close), initial=0.0))
    for ours, theirs in zip(macd(close, fast, slow, signal), talib.MACD(close, fast, slow, signal)):
        assert_matches(ours, theirs, atol=atol)


def assert_all_match_talib(close: np.ndarray, period: int) -> None:
    assert_matches(sma(close, period), talib.SMA(close, period))
    assert_matches(ema(close, period), talib.EMA(close, period))
    assert_matches(rsi(close, period), talib.RSI(close, period))
    for nbdev in (1.0, 2.0, 2.5):
        bands = bollinger_bands(close, period, nbdev)
        upper, middle, lower = talib.BBANDS(close, period, nbdev, nbdev, talib.MA_Type.SMA)
        assert_matches(bands.upper, upper)
        assert_matches(bands.middle, middle)
        assert_matches(bands.lower, lower)


# --- agreement with TA-Lib -------------------------------------------------------------


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("token", ["BTC", "ETH", "LTC"])
def test_matches_talib_on_sample_prices(sample_closes, token, period):
    assert_all_match_talib(sample_closes[token], period)


@pytest.mark.parametrize("settings_", MACD_SETTINGS)
@pytest.mark.parametrize("token", ["BTC", "ETH", "LTC"])
def test_macd_matches_talib_on_sample_prices(sample_closes, token, settings_):
    assert_macd_matches(sample_closes[token], *settings_)


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize(
    "series", ["random_walk", "noise_tiny", "noise_huge", "around_zero", "two_decimals"]
)
def test_matches_talib_on_random_series(random_series, series, period):
    assert_all_match_talib(random_series[series], period)


@pytest.mark.parametrize("settings_", MACD_SETTINGS)
@pytest.mark.parametrize(
    "series", ["random_walk", "noise_tiny", "noise_huge", "around_zero", "two_decimals"]
)
def test_macd_matches_talib_on_random_series(random_series, series, settings_):
    assert_macd_matches(random_series[series], *settings_)


@settings(max_examples=150, deadline=None)
@given(
    close=arrays(
        np.float64,
        st.integers(0, 120),
        elements=st.floats(0.01, 1e6, allow_nan=False, allow_infinity=False),
    ),
    period=st.integers(2, 40),
    fast=st.integers(2, 20),
    extra=st.integers(1, 20),
    signal=st.integers(1, 12),
)
def test_matches_talib_on_arbitrary_arrays(close, period, fast, extra, signal):
    assert_all_match_talib(close, period)
    assert_macd_matches(close, fast, fast + extra, signal)


def test_sma_running_sum_does_not_drift_over_a_million_bars():
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 1_000_000)))
    period = 20
    ours = sma(close, period)
    assert_matches(ours, talib.SMA(close, period))
    bars = rng.integers(period - 1, len(close), 2000)
    exact = np.array([math.fsum(close[bar - period + 1 : bar + 1]) / period for bar in bars])
    np.testing.assert_allclose(ours[bars], exact, rtol=RTOL)


# --- warm-up --------------------------------------------------------------------------


@pytest.mark.parametrize("period", PERIODS)
def test_warmup_lengths_are_talibs_lookbacks(sample_closes, period):
    close = sample_closes["BTC"]
    cases = [
        (sma(close, period), sma_warmup(period), talib.SMA(close, period)),
        (ema(close, period), ema_warmup(period), talib.EMA(close, period)),
        (rsi(close, period), rsi_warmup(period), talib.RSI(close, period)),
        (
            bollinger_bands(close, period).upper,
            bollinger_warmup(period),
            talib.BBANDS(close, period)[0],
        ),
    ]
    for ours, warmup, theirs in cases:
        leading_nan = int(np.argmax(~np.isnan(ours)))
        assert leading_nan == warmup == int(np.argmax(~np.isnan(theirs)))


def test_macd_warmup_is_slow_minus_one_plus_signal_minus_one(sample_closes):
    lines = macd(sample_closes["ETH"], 12, 26, 9)
    assert macd_warmup(26, 9) == 33
    for line in lines:
        assert np.isnan(line[:33]).all() and not np.isnan(line[33:]).any()


def test_macd_seeds_the_fast_ema_where_the_slow_one_starts(sample_closes):
    close = sample_closes["BTC"]
    fast, slow = 12, 26
    # TA-Lib's MACD line at bar slow-1 is SMA(fast) - SMA(slow) over windows ending there,
    # not EMA(fast) (seeded at bar fast-1) - EMA(slow).
    line = macd(close, fast, slow, 1).macd
    expected = close[slow - fast : slow].mean() - close[:slow].mean()
    assert line[slow - 1] == pytest.approx(expected, rel=RTOL)
    assert line[slow - 1] != pytest.approx(ema(close, fast)[slow - 1] - ema(close, slow)[slow - 1])


@pytest.mark.parametrize("length", [0, 1, 5, 13, 14])
def test_arrays_shorter_than_the_warmup_give_all_nan(length):
    close = np.linspace(100.0, 110.0, length)
    outputs = [
        sma(close, 15),
        ema(close, 15),
        rsi(close, 14),
        *bollinger_bands(close, 15),
        *macd(close, 12, 26, 9),
    ]
    for output in outputs:
        assert output.shape == (length,) and np.isnan(output).all()


# --- edge cases -----------------------------------------------------------------------


def test_constant_prices_are_defined_and_warning_free():
    close = np.full(300, 101.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bands = bollinger_bands(close, 20)
        lines = macd(close)
        values = [sma(close, 20), ema(close, 20), rsi(close, 14), rsi(close, 14, flat_value=50.0)]
    np.testing.assert_allclose(values[0][19:], 101.2, rtol=RTOL)
    np.testing.assert_allclose(values[1][19:], 101.2, rtol=RTOL)
    # No gain and no loss: TA-Lib answers 0 rather than dividing 0 by 0.
    assert_matches(values[2], talib.RSI(close, 14))
    assert (values[2][14:] == 0.0).all() and (values[3][14:] == 50.0).all()
    assert (bands.upper[19:] == bands.lower[19:]).all()
    assert (bands.percent_b[19:] == 0.5).all() and (bands.bandwidth[19:] == 0.0).all()
    for line in lines:
        np.testing.assert_allclose(line[33:], 0.0, atol=1e-12)


def test_a_single_spike_matches_talib_and_reads_as_extreme():
    close = np.full(120, 50.0)
    close[60] = 80.0
    assert_all_match_talib(close, 14)
    assert_macd_matches(close, 12, 26, 9)
    assert rsi(close, 14)[60] == 100.0
    bands = bollinger_bands(close, 20)
    assert bands.percent_b[60] > 1.0 and bands.bandwidth[60] > 0.0
    assert bands.percent_b[59] == 0.5


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    "indicator",
    [
        lambda close: sma(close, 5),
        lambda close: ema(close, 5),
        lambda close: rsi(close, 5),
        lambda close: bollinger_bands(close, 5),
        lambda close: macd(close, 3, 6, 2),
    ],
)
def test_non_finite_prices_are_rejected_with_their_index(indicator, bad):
    close = np.linspace(1.0, 2.0, 40)
    close[17] = bad
    with pytest.raises(ValueError, match=rf"close\[17\] is {bad}: prices must be finite"):
        indicator(close)


@pytest.mark.parametrize("period", [1, 0, -3, 2.5, "14", True, None])
@pytest.mark.parametrize("indicator", [sma, ema, rsi, bollinger_bands])
def test_invalid_periods_are_rejected(indicator, period):
    with pytest.raises(ValueError, match=r"period must be an integer >= 2, got "):
        indicator(np.ones(30), period)


@pytest.mark.parametrize(
    ("fast", "slow", "signal", "message"),
    [
        (1, 26, 9, "fast must be an integer >= 2"),
        (12, 26, 0, "signal must be an integer >= 1"),
        (26, 26, 9, "fast must be less than slow"),
        (30, 26, 9, "fast must be less than slow"),
        (12.0, 26, 9, "fast must be an integer"),
    ],
)
def test_invalid_macd_periods_are_rejected(fast, slow, signal, message):
    with pytest.raises(ValueError, match=message):
        macd(np.ones(60), fast, slow, signal)


@pytest.mark.parametrize("nbdev", [0.0, -1.0, np.nan, np.inf, "2", None])
def test_invalid_band_width_is_rejected(nbdev):
    with pytest.raises(ValueError, match="nbdev must be a finite number > 0"):
        bollinger_bands(np.ones(30), 20, nbdev)


@pytest.mark.parametrize("flat_value", [-1.0, 100.5, np.nan])
def test_invalid_flat_rsi_value_is_rejected(flat_value):
    with pytest.raises(ValueError, match="flat_value must be within"):
        rsi(np.ones(30), 14, flat_value=flat_value)


def test_two_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match=r"close must be a 1-D array, got shape \(2, 10\)"):
        sma(np.ones((2, 10)), 3)


def test_integer_lists_are_accepted_and_input_is_not_modified():
    prices = [10, 11, 12, 11, 10, 12, 13, 14, 13, 12]
    as_array = np.array(prices, dtype=np.float64)
    before = as_array.copy()
    assert_matches(sma(prices, np.int64(3)), talib.SMA(as_array, 3))
    rsi(as_array, 3)
    bollinger_bands(as_array, 3)
    np.testing.assert_array_equal(as_array, before)
