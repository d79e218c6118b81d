"""Positions, realised profit and the portfolio view.

Each (asset, strategy) of a user is a sleeve (strategies.engine.Sleeve, the same the
user backtest keeps): a BUY spends quote tokens on the asset, a SELL sells what that
sleeve bought (never the user's own deposits of the asset) at average cost. The store
keeps each sleeve as a row, written in the same transaction that records one of its
trades mined (``position_row``), so a cycle reads a few rows however long the history;
``sleeves`` recomputes them from the mined trades (a reorg, the migration, the tests).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from keepers.persistence.store import Store
from keepers.persistence.tables import MINED, LockRow, PositionRow, TradeRow
from strategies.engine import BUY, Sleeve, sell_sleeves
from strategies.exits import EXIT_STRATEGY


def apply_trade(sleeve: Sleeve, trade: TradeRow, quote_decimals: int) -> float | None:
    """Adds one mined trade to its sleeve; returns the profit a SELL realised (None for a BUY)."""
    if trade.side == BUY:
        sleeve.buy(trade.amount_out, trade.amount_in / 10**quote_decimals)
        return None
    return sleeve.sell(trade.amount_in, trade.amount_out / 10**quote_decimals)


def sleeves(trades: Iterable[TradeRow], quote_decimals: int) -> dict[tuple[str, str], Sleeve]:
    """Every sleeve of these trades (one user's), from the mined ones in order."""
    result: dict[tuple[str, str], Sleeve] = {}
    for trade in trades:
        if trade.status != MINED or trade.amount_out is None:
            continue
        if trade.strategy == EXIT_STRATEGY:  # a protective exit sold every sleeve of the token
            sell_sleeves(result, trade.asset, trade.amount_in, trade.amount_out / 10**quote_decimals)
        else:
            apply_trade(result.setdefault((trade.asset, trade.strategy), Sleeve()), trade, quote_decimals)
    return result


def stored_sleeves(store: Store, user_id: str) -> dict[tuple[str, str], Sleeve]:
    """The user's sleeves as the store keeps them."""
    return sleeves_of(store.positions(user_id))


def stored_sleeves_of(store: Store, user_ids: Collection[str]) -> dict[str, dict[tuple[str, str], Sleeve]]:
    """``stored_sleeves`` of several users in one read, by user (a user without any: empty)."""
    held: dict[str, dict[tuple[str, str], Sleeve]] = {user_id: {} for user_id in user_ids}
    for row in store.positions_of(user_ids):
        held[row.user_id][(row.asset, row.strategy)] = _sleeve(row)
    return held


def sleeves_of(rows: Iterable[PositionRow]) -> dict[tuple[str, str], Sleeve]:
    """Position rows as sleeves, by (asset, strategy)."""
    return {(row.asset, row.strategy): _sleeve(row) for row in rows}


def _sleeve(row: PositionRow) -> Sleeve:
    return Sleeve(row.tokens, row.cost_quote, row.realised_quote)


def position_row(user_id: str, asset: str, strategy: str, sleeve: Sleeve) -> PositionRow:
    """A sleeve as the store keeps it."""
    return PositionRow(user_id=user_id, asset=asset, strategy=strategy, tokens=sleeve.tokens,
                       cost_quote=sleeve.cost_quote, realised_quote=sleeve.realised_quote)


def value_quote(amounts: Mapping[str, int], prices_usd: Mapping[str, float], decimals: Mapping[str, int],
                quote: str) -> float:
    """Token amounts (base units, by symbol) at oracle USD prices, in quote units."""
    return sum(amount / 10 ** decimals[symbol] * prices_usd[symbol] / prices_usd[quote]
               for symbol, amount in amounts.items())


@dataclass
class Portfolio:
    """One user's portfolio at one moment of chain time: the strategies' sleeves, the
    locks in force then, and (given balances and valid oracle prices) what it is worth.
    The cycle, `ape run keeper status` and the status API all read it from here."""

    sleeves: dict[tuple[str, str], Sleeve]
    locks: list[LockRow]
    realised_pnl_quote: float
    vault_value_quote: float | None = None  # None unless every balance has a valid price
    position_value_quote: float = 0.0  # the open sleeves with a valid price
    open_pnl_quote: float = 0.0

    @property
    def open_sleeves(self) -> dict[tuple[str, str], Sleeve]:
        """The sleeves that hold tokens."""
        return {key: sleeve for key, sleeve in self.sleeves.items() if sleeve.tokens > 0}


def portfolio(held: Mapping[tuple[str, str], Sleeve], locks: Iterable[LockRow], at: datetime | None, *, quote: str,
              decimals: Mapping[str, int], balances: Mapping[str, int] | None = None,
              prices_usd: Mapping[str, float] | None = None) -> Portfolio:
    """The portfolio of one user's sleeves at chain time ``at`` (None: every lock counts).
    ``prices_usd`` holds only valid oracle prices; value and open PnL need the quote's."""
    held = dict(held)
    result = Portfolio(sleeves=held, realised_pnl_quote=sum(sleeve.realised_quote for sleeve in held.values()),
                       locks=[lock for lock in locks if lock.until is None or at is None or lock.until > at])
    prices = dict(prices_usd or {})
    if quote not in prices:
        return result
    for (asset, _), sleeve in result.open_sleeves.items():
        if asset in prices:
            worth = value_quote({asset: sleeve.tokens}, prices, decimals, quote)
            result.position_value_quote += worth
            result.open_pnl_quote += worth - sleeve.cost_quote
    if balances is not None and all(symbol in prices for symbol in balances):
        result.vault_value_quote = value_quote(balances, prices, decimals, quote)
    return result
