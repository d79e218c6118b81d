"""Positions and realised profit from the store's mined trades.

Each (asset, strategy) of a user is a sleeve, as in the backtester: a BUY spends quote
tokens on the asset, a SELL sells what that sleeve bought (never the user's own
deposits of the asset). Cost is the average cost of what the sleeve holds, in quote
units; a SELL realises its proceeds less the cost of the part sold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from keepers.persistence.tables import MINED, TradeRow

BUY, SELL = "BUY", "SELL"


@dataclass
class Sleeve:
    """What one strategy holds of one asset for one user."""

    tokens: int = 0  # base units of the asset
    cost_quote: float = 0.0  # quote units paid for ``tokens``
    realised_quote: float = 0.0


def apply_trade(sleeve: Sleeve, trade: TradeRow, quote_decimals: int) -> float | None:
    """Adds one mined trade to its sleeve; returns the profit a SELL realised (None for a BUY)."""
    if trade.side == BUY:
        sleeve.tokens += trade.amount_out
        sleeve.cost_quote += trade.amount_in / 10**quote_decimals
        return None
    return realise(sleeve, trade.amount_in, trade.amount_out / 10**quote_decimals)


def sleeves(trades: Iterable[TradeRow], quote_decimals: int) -> dict[tuple[str, str], Sleeve]:
    """Every sleeve of these trades (one user's), from the mined ones in order."""
    result: dict[tuple[str, str], Sleeve] = {}
    for trade in trades:
        if trade.status == MINED and trade.amount_out is not None:
            apply_trade(result.setdefault((trade.asset, trade.strategy), Sleeve()), trade, quote_decimals)
    return result


def realise(sleeve: Sleeve, tokens_sold: int, proceeds_quote: float) -> float:
    """Takes a SELL out of ``sleeve`` at average cost; returns the profit it realised."""
    if sleeve.tokens <= 0:
        return proceeds_quote
    share = min(tokens_sold / sleeve.tokens, 1.0)
    cost = sleeve.cost_quote * share
    sleeve.tokens = max(sleeve.tokens - tokens_sold, 0)
    sleeve.cost_quote -= cost
    profit = proceeds_quote - cost
    sleeve.realised_quote += profit
    return profit


def value_quote(amounts: Mapping[str, int], prices_usd: Mapping[str, float], decimals: Mapping[str, int],
                quote: str) -> float:
    """Token amounts (base units, by symbol) at oracle USD prices, in quote units."""
    return sum(amount / 10 ** decimals[symbol] * prices_usd[symbol] / prices_usd[quote]
               for symbol, amount in amounts.items())
