"""Conversions between human amounts (Decimal) and on-chain integers."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from keepers.base.errors import SentinelError


def to_base_units(amount: Decimal | str | int | float, decimals: int, field: str = "amount") -> int:
    """``amount`` whole tokens in base units; refuses precision the token cannot hold."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise SentinelError(f"{field}: {amount!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise SentinelError(f"{field}: {amount!r} must be a finite, non-negative number")
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise SentinelError(f"{field}: {amount} has more than {decimals} decimal places")
    return int(scaled)


def from_base_units(amount: int, decimals: int) -> Decimal:
    """``amount`` base units as whole tokens."""
    return Decimal(amount).scaleb(-decimals)


def format_amount(amount: int, decimals: int) -> str:
    """Base units as a plain decimal string without trailing zeros: 1500000, 6 -> '1.5'."""
    return f"{from_base_units(amount, decimals).normalize():f}"
