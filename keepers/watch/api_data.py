"""What the status API serves, as JSON-ready values read from the keeper's store.

Each call reads the store afresh (a new cycle shows at the next request). Positions and
realised PnL come from the mined trades through keepers/engine/positions.py, the heartbeat
verdict from keepers/views/status.py, like `ape run keeper status`; the vault value and the
equity curve are the values each cycle recorded. Vault balances are on-chain, not in
the store: `ape run keeper status` reads them. The charts' data: keepers/watch/charts.py.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry

from keepers.engine.cycle import CycleResult
from keepers.engine.positions import portfolio, stored_sleeves
from keepers.engine.startup import user_strategies
from keepers.persistence.store import Store
from keepers.persistence.tables import GLOBAL_USER, LockRow, TradeRow
from keepers.settings.keeper import KeeperConfig
from keepers.views.status import dead_man
from keepers.watch.charts import equity_lines, price_chart
from strategies.base import Strategy
from strategies.engine import BUY

EQUITY_POINTS = 500  # a longer curve is thinned to about this many points


@dataclass
class StatusData:
    """The read-only views of one keeper's store."""

    store: Store
    config: KeeperConfig
    decimals: dict[str, int]  # token symbol -> decimals
    quote: str
    registry: CollectorRegistry | None = None
    # Scheduled admin operations (keepers.chain.admin_ops), as last read by the keeper.
    admin_operations: Callable[[], list[dict[str, Any]]] = field(default=lambda: [])
    # User id -> the vault balances (token units) and block time its last cycle read: the
    # balances live on-chain, and the API never calls the node from its own thread.
    balances: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record_balances(self, result: CycleResult) -> None:
        """Keeps the vault balances a finished cycle read (the scheduler's ``on_cycle`` hook)."""
        if result.balances:
            self.balances[result.user_id] = {"block_time": result.block_time, "tokens": dict(result.balances)}

    def users(self) -> list[dict[str, Any]]:
        """Each configured user: last cycle, vault value and balances, realised PnL, positions, locks."""
        last_cycles = self.store.last_cycles()
        locks = self.store.locks([user.id for user in self.config.users] + [GLOBAL_USER])
        result = []
        for user in self.config.users:
            cycle = last_cycles.get(user.id)
            # Locks end in chain time (a replay's), as `keeper status` shows them: at the last cycle's block.
            own_locks = [lock for lock in locks if lock.user_id in (user.id, GLOBAL_USER)]
            book = portfolio(stored_sleeves(self.store, user.id), own_locks,
                             cycle.block_time if cycle is not None else None,
                             quote=self.quote, decimals=self.decimals)
            result.append({
                "id": user.id, "enabled": user.enabled, "tokens": user.tokens,
                "vault_value_quote": cycle.vault_value_quote if cycle else None,
                "balances": self.balances.get(user.id),
                "realised_pnl_quote": book.realised_pnl_quote,
                "positions": [{"asset": asset, "strategy": strategy,
                               "amount": sleeve.tokens / 10 ** self.decimals[asset], "cost_quote": sleeve.cost_quote}
                              for (asset, strategy), sleeve in book.open_sleeves.items()],
                "locks": [_lock(lock) for lock in book.locks],
                "last_cycle": None if cycle is None else {
                    "started_at": cycle.started_at, "block_time": cycle.block_time, "error": cycle.error,
                    "duration_seconds": cycle.duration_seconds, "trades_ok": cycle.trades_ok,
                    "trades_failed": cycle.trades_failed, "blocks": cycle.blocks},
            })
        return result

    def equity(self, user_id: str) -> list[dict[str, Any]]:
        """The user's vault value at each cycle's block time (Unix seconds, thinned to
        ~EQUITY_POINTS), with its peak and the drawdown kill switch's level."""
        points = [(row.block_time, row.vault_value_quote) for row in self.store.cycles(user_id)
                  if row.vault_value_quote is not None and row.block_time is not None]
        step = max(math.ceil(len(points) / EQUITY_POINTS), 1)
        thinned = points[::step] + ([points[-1]] if points and (len(points) - 1) % step else [])
        return equity_lines(thinned, self.config.user(user_id).risk.kill_switch_drawdown)

    def chart(self, user_id: str, token: str) -> dict[str, Any]:
        """The price bars of one of the user's tokens, its trades as markers and the indicator
        lines of the strategies the user runs on it (keepers/watch/charts.py)."""
        user = self.config.user(user_id)
        if token not in user.tokens:
            raise KeyError(token)
        settings = self.config.settings
        return price_chart(self.store, user_id, token, settings.price_series[token], settings.timeframe_seconds,
                           self._strategies[(user_id, token)], self.decimals, self.quote)

    @functools.cached_property
    def _strategies(self) -> dict[tuple[str, str], tuple[Strategy, ...]]:
        """(user, token) -> the strategies the keeper runs there (read from the strategies file once)."""
        return user_strategies(self.config, self.config.users)

    def trades(self, user_id: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` trades (of one user, or all), newest first, in token units."""
        return [self._trade(row) for row in reversed(self.store.trades(user_id)[-limit:])]

    def signals(self, user_id: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` strategy decisions, newest bar first, with their indicator
        values and outcome (the trade, or why none: the risk rule or on-chain check)."""
        return [{"user": row.user_id, "asset": row.asset, "strategy": row.strategy, "bar_time": row.bar_time,
                 "action": row.action, "confidence": row.confidence, "reason": row.reason,
                 "indicators": row.indicators, "outcome": row.outcome}
                for row in reversed(self.store.signals(user_id)[-limit:])]

    def locks(self) -> list[dict[str, Any]]:
        """Every lock, the global kill switch included (user "*")."""
        return [_lock(lock) for lock in self.store.locks([user.id for user in self.config.users] + [GLOBAL_USER])]

    def health(self) -> dict[str, Any]:
        """The keepers' heartbeats and the dead-man verdict of `ape run keeper status`."""
        beats = self.store.heartbeats()
        reason = dead_man(beats, self.config.settings)
        return {"alive": not reason, "dead_reason": reason, "admin_operations_pending": sum(op["affects_users"] for op in self.admin_operations()),
                "keepers": [{"keeper_id": beat.keeper_id, "last_seen": beat.last_seen, "started_at": beat.started_at,
                             "pid": beat.pid, "host": beat.host} for beat in beats]}

    def metrics(self) -> list[dict[str, Any]]:
        """This process's Prometheus samples (histogram buckets left out)."""
        if self.registry is None:
            return []
        return [{"name": sample.name, "labels": sample.labels, "value": sample.value}
                for family in self.registry.collect() for sample in family.samples
                if not sample.name.endswith("_bucket")]

    def _trade(self, row: TradeRow) -> dict[str, Any]:
        symbol_in, symbol_out = (self.quote, row.asset) if row.side == BUY else (row.asset, self.quote)
        return {
            "trade_id": row.trade_id, "user": row.user_id, "asset": row.asset, "strategy": row.strategy,
            "side": row.side, "status": row.status, "bar_time": row.bar_time, "updated_at": row.updated_at,
            "token_in": symbol_in, "amount_in": row.amount_in / 10 ** self.decimals[symbol_in],
            "token_out": symbol_out,
            "amount_out": None if row.amount_out is None else row.amount_out / 10 ** self.decimals[symbol_out],
            "tx_hash": row.tx_hash, "revert_reason": row.revert_reason,
        }


def _lock(lock: LockRow) -> dict[str, Any]:
    return {"user": lock.user_id, "rule": lock.rule, "asset": lock.asset, "until": lock.until,
            "reason": lock.reason, "kill_switch": lock.until is None}


def json_default(value: Any) -> Any:
    """JSON for what the views hold besides plain values: times as ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")
