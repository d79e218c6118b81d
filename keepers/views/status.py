"""`ape run keeper status`: each user now, and whether the keepers are alive.

Per user: vault balances and value (one Multicall3 read), open positions, realised
and open PnL, locks and kill switches, the last cycle. Per keeper: heartbeat age. For
the deployment: the admin operations pending on its AccessManager, with when each
takes effect. The
keepers count as dead when the newest heartbeat is older than ``dead_man_intervals``
cycle intervals (or there is none): ``status`` then exits 1, so cron or a monitor can
alert on it (a crashed keeper cannot report itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ape import chain

from keepers.base.clock import now_utc
from keepers.chain.admin_ops import watch_deployment
from keepers.chain.client import ChainClient
from keepers.chain.deployment import DeploymentRecord
from keepers.engine.positions import portfolio, stored_sleeves
from keepers.engine.risk import GLOBAL_KILL_SWITCH
from keepers.engine.startup import user_address
from keepers.persistence.store import Store
from keepers.persistence.tables import GLOBAL_USER, HeartbeatRow
from keepers.settings.keeper import KeeperConfig, KeeperSettings, UserConfig
from keepers.settings.network import NetworkSpec


@dataclass
class UserStatus:
    """One user's line of the status table."""

    user_id: str
    value_quote: float | None = None
    balances_text: str = ""
    positions_text: str = ""
    pnl_text: str = ""
    locks_text: str = ""
    last_cycle_text: str = ""


@dataclass
class KeeperStatus:
    """Every user's status and the keepers' heartbeats."""

    users: list[UserStatus] = field(default_factory=list)
    heartbeat_lines: list[str] = field(default_factory=list)
    alive: bool = False
    dead_reason: str = ""
    global_kill_switch: str = ""
    admin_ops_lines: list[str] = field(default_factory=list)


def keeper_status(config: KeeperConfig, users: tuple[UserConfig, ...], store: Store, spec: NetworkSpec,
                  record: DeploymentRecord, *, local_chain: bool) -> KeeperStatus:
    """The status of ``users`` from the store and the chain."""
    client = ChainClient(spec=spec, record=record, keeper=None)
    client.connect(local_chain=local_chain)
    status = KeeperStatus()
    last_cycles = store.last_cycles()
    quote = spec.quote.symbol
    for user in users:
        address = user_address(user, local_chain)
        symbols = [quote, *user.tokens]
        snapshot = client.snapshot(address, symbols)
        line = UserStatus(user_id=user.id if user.enabled else f"{user.id} (disabled)")
        line.balances_text = ", ".join(
            f"{snapshot.balances[s] / 10 ** client.token_decimals[s]:,.6g} {s}" for s in symbols)
        prices = {s: snapshot.feeds[s].price for s in symbols if client.feed_problem(s, snapshot) is None}
        book = portfolio(stored_sleeves(store, user.id), store.locks([user.id]),
                         datetime.fromtimestamp(snapshot.block_time, UTC), quote=quote,
                         decimals=client.token_decimals, balances=snapshot.balances, prices_usd=prices)
        line.positions_text = ", ".join(
            f"{sleeve.tokens / 10 ** client.token_decimals[asset]:.6g} {asset} ({strategy})"
            for (asset, strategy), sleeve in book.open_sleeves.items()) or "none"
        line.pnl_text = f"{book.realised_pnl_quote:,.2f} / {book.open_pnl_quote:,.2f}"
        line.value_quote = book.vault_value_quote
        line.locks_text = "; ".join(
            f"{lock.rule} {lock.asset}" + (" until " + lock.until.strftime("%Y-%m-%d %H:%M") if lock.until else
                                           " (kill switch)") for lock in book.locks) or "none"
        cycle = last_cycles.get(user.id)
        line.last_cycle_text = "never" if cycle is None else (
            f"{_age(cycle.started_at)} ago" + (f", error: {cycle.error}" if cycle.error else ""))
        status.users.append(line)
    global_locks = [lock for lock in store.locks([GLOBAL_USER]) if lock.rule == GLOBAL_KILL_SWITCH]
    status.global_kill_switch = global_locks[0].reason if global_locks else ""
    head_time = chain.blocks.head.timestamp
    status.admin_ops_lines = [operation.describe(head_time) for operation in watch_deployment(record).pending()]
    _heartbeats(store, config, status)
    return status


def _heartbeats(store: Store, config: KeeperConfig, status: KeeperStatus) -> None:
    beats = store.heartbeats()
    for beat in beats:
        status.heartbeat_lines.append(
            f"keeper {beat.keeper_id} (pid {beat.pid}): last seen {_age(beat.last_seen)} ago, "
            f"started {beat.started_at.strftime('%Y-%m-%d %H:%M:%S')} UTC")
    status.dead_reason = dead_man(beats, config.settings)
    status.alive = not status.dead_reason


def dead_man(beats: list[HeartbeatRow], settings: KeeperSettings) -> str:
    """Why the keepers count as dead ("" while the newest heartbeat is younger than
    ``dead_man_intervals`` cycle intervals)."""
    if not beats:
        return "no keeper has ever run against this store"
    limit = settings.dead_man_seconds
    silent = (now_utc() - max(beat.last_seen for beat in beats)).total_seconds()
    if silent <= limit:
        return ""
    return f"no heartbeat for {silent:.0f} s, more than dead_man_intervals x cycle_interval_seconds = {limit} s"


def _age(when: datetime) -> str:
    seconds = max((now_utc() - when).total_seconds(), 0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
