"""Technical indicators over numpy price arrays, with TA-Lib's conventions.

Every function is pure: it takes a 1-D array of finite prices and returns float64
arrays of the same length, NaN during the warm-up. Warm-up lengths, seeding (an SMA
seeds EMA and Wilder's RSI), population standard deviation in the Bollinger Bands and
MACD's alignment of the fast EMA with the slow one all follow TA-Lib 0.8. The kernels
mirror TA-Lib's order of floating-point operations (its running sums, its shifted
variance, its fused multiply-add in the EMA step and its reciprocal in RSI), so the
values agree with TA-Lib's to the last bit on a CPU with FMA (TA-Lib's portable
build rounds the EMA step twice, so there the two differ in the last few bits).

The loops are compiled with numba; ``error_model="numpy"`` because the divisions are
guarded by hand and Python's zero-division checks would only slow the loops down.
"""

from __future__ import annotations

import numbers
import operator
from typing import NamedTuple

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

# TA-Lib 0.8's cancellation-free variance: deviations are summed against a shift that
# is re-anchored on the window mean (a fresh two-pass) when the variance falls below
# _RESEED_CANCELLATION of the mean squared deviation, when a leaving outlier dwarfs the
# remaining sum by _RESEED_OUTLIER, or at least every _RESEED_WINDOWS windows; after a
# fresh two-pass, a variance below _ROUNDING_NOISE of the mean square is rounding noise
# and counts as zero.
_RESEED_CANCELLATION = 1e-6
_RESEED_OUTLIER = 1e6
_RESEED_WINDOWS = 32
_ROUNDING_NOISE = 1e-12


class BollingerBands(NamedTuple):
    """Bollinger Bands of one price array; every field has the input's length."""

    middle: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    percent_b: np.ndarray
    """(close - lower) / (upper - lower); 0.5 where the bands have zero width."""
    bandwidth: np.ndarray
    """(upper - lower) / middle; NaN where the middle band is zero."""


class Macd(NamedTuple):
    """MACD line, its signal line and their difference (the histogram)."""

    macd: np.ndarray
    signal: np.ndarray
    histogram: np.ndarray


# --- warm-up lengths: the number of leading NaN in each indicator's output ---------


def sma_warmup(period: int) -> int:
    """Leading NaN bars of ``sma(close, period)``."""
    return period - 1


def ema_warmup(period: int) -> int:
    """Leading NaN bars of ``ema(close, period)``."""
    return period - 1


def rsi_warmup(period: int) -> int:
    """Leading NaN bars of ``rsi(close, period)``: one more, as RSI needs a change."""
    return period


def bollinger_warmup(period: int) -> int:
    """Leading NaN bars of ``bollinger_bands(close, period)``."""
    return period - 1


def macd_warmup(slow: int, signal: int) -> int:
    """Leading NaN bars of ``macd(close, fast, slow, signal)`` (any fast < slow)."""
    return slow - 1 + signal - 1


# --- public indicators -------------------------------------------------------------


def sma(close: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average of the last ``period`` prices (TA-Lib ``SMA``).

    A running sum, as TA-Lib's: it carries a rounding error of the order of 1e-16
    times the highest prices it has seen, negligible unless the price has since
    collapsed by many orders of magnitude (then, as in TA-Lib, ~1e-10 relative).
    """
    return _single_output(_sma_kernel, close, period, sma_warmup)


def ema(close: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, k = 2 / (period + 1), seeded by the first SMA
    (TA-Lib ``EMA``)."""
    return _single_output(_ema_kernel, close, period, ema_warmup)


def rsi(close: np.ndarray, period: int = 14, flat_value: float = 0.0) -> np.ndarray:
    """Relative Strength Index with Wilder's smoothing (TA-Lib ``RSI``), in [0, 100].

    The average gain and loss are seeded by the plain mean of the first ``period``
    changes. Where both averages are zero (no price move since the start, or so long
    ago that the averages underflowed) RSI is 0/0; TA-Lib answers 0, the default here,
    and ``flat_value=50.0`` gives the neutral reading a strategy usually wants.
    """
    if not 0.0 <= flat_value <= 100.0:
        raise ValueError(f"flat_value must be within [0, 100], got {flat_value!r}")
    return _single_output(_rsi_kernel, close, period, rsi_warmup, float(flat_value))


def bollinger_bands(close: np.ndarray, period: int = 20, nbdev: float = 2.0) -> BollingerBands:
    """Bollinger Bands: SMA middle band +/- ``nbdev`` population standard deviations
    (TA-Lib ``BBANDS`` with an SMA), plus %B and bandwidth."""
    prices = _as_prices(close)
    _check_period("period", period)
    if isinstance(nbdev, bool) or not isinstance(nbdev, numbers.Real) or not 0 < nbdev < np.inf:
        raise ValueError(f"nbdev must be a finite number > 0, got {nbdev!r}")
    warmup = bollinger_warmup(period)
    bands = BollingerBands(*(_output(len(prices), warmup) for _ in BollingerBands._fields))
    if len(prices) > warmup:
        _bollinger_kernel(prices, period, float(nbdev), *bands)
    return bands


def macd(close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """MACD = EMA(fast) - EMA(slow), signal = EMA(signal) of MACD (TA-Lib ``MACD``).

    As in TA-Lib, both EMAs start at bar ``slow - 1``: the fast one is seeded there by
    the SMA of the last ``fast`` prices, so it differs from ``ema(close, fast)`` for a
    while. All three outputs are NaN until the signal line exists; ``signal=1`` makes
    the signal line the MACD line itself (histogram 0).
    """
    prices = _as_prices(close)
    _check_period("fast", fast)
    _check_period("slow", slow)
    _check_period("signal", signal, minimum=1)
    if fast >= slow:
        raise ValueError(f"fast must be less than slow, got fast={fast} slow={slow}")
    warmup = macd_warmup(slow, signal)
    lines = Macd(*(_output(len(prices), warmup) for _ in Macd._fields))
    if len(prices) > warmup:
        _macd_kernel(prices, fast, slow, signal, *lines)
    return lines


# --- input checks and outputs ---------------------------------------------------------


def _single_output(kernel, close, period, warmup_of, *options) -> np.ndarray:
    """Validate, then run a one-output ``kernel(prices, period, *options, out)``."""
    prices = _as_prices(close)
    _check_period("period", period)
    warmup = warmup_of(period)
    out = _output(len(prices), warmup)
    if len(prices) > warmup:
        kernel(prices, period, *options, out)
    return out


def _as_prices(close: np.ndarray) -> np.ndarray:
    """``close`` as a contiguous float64 vector; ValueError naming the first bad bar."""
    prices = np.ascontiguousarray(close, dtype=np.float64)
    if prices.ndim != 1:
        raise ValueError(f"close must be a 1-D array, got shape {prices.shape}")
    if not np.isfinite(prices).all():
        bad = int(np.argmin(np.isfinite(prices)))
        raise ValueError(
            f"close[{bad}] is {prices[bad]}: prices must be finite "
            "(drop or fill missing bars before computing indicators)"
        )
    return prices


def _check_period(name: str, period: int, minimum: int = 2) -> None:
    """Reject non-integer periods and periods below ``minimum``."""
    try:
        value = operator.index(period)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {period!r}") from None
    if isinstance(period, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {period!r}")


def _output(length: int, warmup: int) -> np.ndarray:
    """An output array, NaN over the warm-up; the kernels fill the rest."""
    out = np.empty(length)
    out[:warmup] = np.nan
    return out


# --- compiled kernels (each writes its outputs from the first defined bar on) -----


@intrinsic
def _fma(typingctx, a, b, c):
    # a * b + c rounded once (LLVM's llvm.fma), as TA-Lib's FMA build steps its EMAs.
    signature = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return signature, codegen


@njit(cache=True, error_model="numpy")
def _sma_kernel(prices, period, out):
    # TA-Lib's running sum, in its order: add the newest, read, drop the oldest.
    total = 0.0
    for i in range(period - 1):
        total += prices[i]
    for i in range(period - 1, len(prices)):
        total += prices[i]
        out[i] = total / period
        total -= prices[i - period + 1]


@njit(cache=True, error_model="numpy")
def _ema_seed(prices, period, last):
    # The SMA of the ``period`` prices ending at ``last``, summed as TA-Lib does.
    total = 0.0
    for i in range(last - period + 1, last + 1):
        total += prices[i]
    return total / period


@njit(cache=True, error_model="numpy")
def _ema_kernel(prices, period, out):
    k = 2.0 / (period + 1)
    value = _ema_seed(prices, period, period - 1)
    out[period - 1] = value
    for i in range(period, len(prices)):
        value = _fma(prices[i] - value, k, value)
        out[i] = value


@njit(cache=True, error_model="numpy")
def _rsi_ratio(gain, loss, flat_value):
    total = gain + loss
    return 100.0 * (gain / total) if total > 0.0 else flat_value


@njit(cache=True, error_model="numpy")
def _rsi_kernel(prices, period, flat_value, out):
    # Wilder's smoothing avg = (avg * (period - 1) + move) * (1 / period), as TA-Lib's
    # build computes it, with the gain/loss split branch-free as TA-Lib's is (a branch
    # on the sign of each change mispredicts half the time on real prices).
    inv_period = 1.0 / period
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        change = prices[i] - prices[i - 1]
        rise = change if change > 0.0 else 0.0
        gain += rise
        loss += rise - change
    gain *= inv_period
    loss *= inv_period
    out[period] = _rsi_ratio(gain, loss, flat_value)
    for i in range(period + 1, len(prices)):
        change = prices[i] - prices[i - 1]
        rise = change if change > 0.0 else 0.0
        gain = (gain * (period - 1) + rise) * inv_period
        loss = (loss * (period - 1) + (rise - change)) * inv_period
        out[i] = _rsi_ratio(gain, loss, flat_value)


@njit(cache=True, error_model="numpy")
def _window_deviations(prices, first, last, inv_period):
    # Fresh two-pass sums of the window prices[first..last] around its own mean, then
    # with the oldest price removed again, as TA-Lib's reseed leaves them.
    total = 0.0
    for j in range(first, last + 1):
        total += prices[j]
    shift = total * inv_period
    dev_sum = 0.0
    dev_sq = 0.0
    for j in range(first, last + 1):
        dev = prices[j] - shift
        dev_sum += dev
        dev_sq += dev * dev
    mean_dev = dev_sum * inv_period
    variance = dev_sq * inv_period - mean_dev * mean_dev
    if variance < _ROUNDING_NOISE * (dev_sq * inv_period):
        variance = 0.0
    dev = prices[first] - shift
    return shift, dev_sum - dev, dev_sq - dev * dev, variance


@njit(cache=True, error_model="numpy")
def _bollinger_kernel(prices, period, nbdev, middle, upper, lower, percent_b, bandwidth):
    # TA-Lib 0.8's single pass: the SMA running sum for the middle band next to the
    # shifted (cancellation-free) running sums for the population variance. The
    # serial pass leaves the window sum in ``middle`` and the variance in ``upper``.
    inv_period = 1.0 / period
    shift = prices[0]
    total = 0.0
    dev_sum = 0.0
    dev_sq = 0.0
    for j in range(period - 1):
        total += prices[j]
        dev = prices[j] - shift
        dev_sum += dev
        dev_sq += dev * dev
    windows_left = _RESEED_WINDOWS * period
    for i in range(period - 1, len(prices)):
        total += prices[i]
        dev = prices[i] - shift
        dev_sum += dev
        dev_sq += dev * dev
        mean_dev = dev_sum * inv_period
        variance = dev_sq * inv_period - mean_dev * mean_dev
        middle[i] = total
        oldest = prices[i - period + 1]
        total -= oldest
        dev = oldest - shift
        dev_sum -= dev
        oldest_sq = dev * dev
        dev_sq -= oldest_sq
        windows_left -= 1
        if (
            variance < _RESEED_CANCELLATION * (dev_sq * inv_period)
            or oldest_sq > _RESEED_OUTLIER * dev_sq
            or windows_left <= 0
        ):
            windows_left = _RESEED_WINDOWS * period
            shift, dev_sum, dev_sq, variance = _window_deviations(
                prices, i - period + 1, i, inv_period
            )
        upper[i] = variance
    first = period - 1
    _bands(
        prices[first:],
        period,
        nbdev,
        middle[first:],
        upper[first:],
        lower[first:],
        percent_b[first:],
        bandwidth[first:],
    )


@njit(cache=True, error_model="numpy")
def _bands(prices, period, nbdev, middle, upper, lower, percent_b, bandwidth):
    # No recurrence here, so LLVM vectorises the divisions and square roots that
    # would otherwise queue on the divider inside the serial loop. The arrays are
    # views starting at the first defined bar: an index that starts at 0 spares numba
    # its negative-index check, which would block vectorisation.
    for i in range(len(prices)):
        mean = middle[i] / period
        variance = upper[i]
        deviation = np.sqrt(variance) * nbdev if variance > 0.0 else 0.0
        high = mean + deviation
        low = mean - deviation
        middle[i] = mean
        upper[i] = high
        lower[i] = low
        width = high - low
        percent_b[i] = (prices[i] - low) / width if width > 0.0 else 0.5
        bandwidth[i] = width / mean if mean != 0.0 else np.nan


@njit(cache=True, error_model="numpy")
def _macd_kernel(prices, fast, slow, signal, macd_out, signal_out, histogram_out):
    k_fast = 2.0 / (fast + 1)
    k_slow = 2.0 / (slow + 1)
    k_signal = 2.0 / (signal + 1)
    first = slow - 1
    fast_ema = _ema_seed(prices, fast, first)
    slow_ema = _ema_seed(prices, slow, first)
    signal_sum = 0.0
    signal_line = 0.0
    for i in range(first, len(prices)):
        if i > first:
            fast_ema = _fma(prices[i] - fast_ema, k_fast, fast_ema)
            slow_ema = _fma(prices[i] - slow_ema, k_slow, slow_ema)
        line = fast_ema - slow_ema
        seen = i - first + 1
        if seen < signal:
            signal_sum += line
            continue
        if signal == 1:
            # TA-Lib's explicit no-smoothing case: (x - prev) * 1 + prev may not be x.
            signal_line = line
        elif seen == signal:
            signal_line = (signal_sum + line) / signal
        else:
            signal_line = _fma(line - signal_line, k_signal, signal_line)
        macd_out[i] = line
        signal_out[i] = signal_line
        histogram_out[i] = line - signal_line
