"""Positions and realised profit from the store's mined trades.

Each (asset, strategy) of a user is a sleeve, as in the backtester: a BUY spends quote
tokens on the asset, a SELL sells what that sleeve bought (never the user's own
deposits of the asset). Cost is the average cost of what the sleeve holds, in quote
units; a SELL realises its proceeds less the cost of the part sold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from keepers.store import MINED, TradeRow

BUY, SELL = "BUY", "SELL"


@dataclass
class Sleeve:
    """What one strategy holds of one asset for one user."""

    tokens: int = 0  # base units of the asset
    cost_quote: float = 0.0  # quote units paid for ``tokens``
    realised_quote: float = 0.0
    fills: list[float] = field(default_factory=list)  # realised profit of each closing trade


def sleeves(trades: Iterable[TradeRow], quote_decimals: int) -> dict[tuple[str, str], Sleeve]:
    """Every sleeve of these trades (one user's), from the mined ones in order."""
    result: dict[tuple[str, str], Sleeve] = {}
    for trade in trades:
        if trade.status != MINED or trade.amount_out is None:
            continue
        sleeve = result.setdefault((trade.asset, trade.strategy), Sleeve())
        if trade.side == BUY:
            sleeve.tokens += trade.amount_out
            sleeve.cost_quote += trade.amount_in / 10**quote_decimals
        else:
            realised = realise(sleeve, trade.amount_in, trade.amount_out / 10**quote_decimals)
            sleeve.fills.append(realised)
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
