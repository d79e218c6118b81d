"""The terminal tables of `ape run keeper status` and `ape run keeper report`."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from keepers.views.report import UserReport
from keepers.views.status import KeeperStatus


def print_status(console: Console, status: KeeperStatus, network: str) -> int:
    """Prints the users, heartbeats and pending admin operations; returns the exit code
    (1 when the dead-man check fails: no keeper beat recently)."""
    table = Table(title=f"Keepers on {network}")
    for column in ("user", "vault value", "balances", "positions", "PnL (realised / open)", "locks", "last cycle"):
        table.add_column(column)
    for user in status.users:
        table.add_row(user.user_id, f"{user.value_quote:,.2f}" if user.value_quote is not None else "-",
                      user.balances_text, user.positions_text, user.pnl_text, user.locks_text, user.last_cycle_text)
    console.print(table)
    for line in status.heartbeat_lines:
        console.print(line)
    console.print(f"{len(status.admin_ops_lines)} pending admin operation(s)" +
                  "".join(f"\n  {line}" for line in status.admin_ops_lines))
    if status.global_kill_switch:
        console.print(f"[red]GLOBAL KILL SWITCH: {status.global_kill_switch}[/red]")
    if not status.alive:
        console.print(f"[red]DEAD MAN: {status.dead_reason}[/red]")
        return 1
    return 0


def print_report(console: Console, reports: list[UserReport], quote: str) -> list[dict]:
    """Prints one row per user (PnL, trades, win rate, costs, risk blocks); returns the
    users' summaries, as `--json` writes them."""
    summaries = [report.summary() for report in reports]
    table = Table(title=f"Keeper report ({quote})")
    for column in ("user", "realised PnL", "return", "trades", "failed", "round trips", "win rate", "fees",
                   "price impact", "gas (ETH)", "risk blocks"):
        table.add_column(column)
    for item in summaries:
        stats = item["stats"] or {}
        table.add_row(
            item["user"], f"{item['realised_pnl_quote']:,.2f}",
            f"{stats['Return [%]']:.2f}%" if stats.get("Return [%]") is not None else "-",
            str(item["trades_mined"]), str(item["trades_failed"]),
            f"{item['round_trips_closed']} closed / {item['round_trips_open']} open",
            f"{item['win_rate_pct']:.0f}%" if item["win_rate_pct"] is not None else "-",
            f"{item['fees_quote']:,.2f}", f"{item['price_impact_quote']:,.2f}", f"{item['gas_eth']:.6f}",
            ", ".join(f"{rule} {count}" for rule, count in item["risk_blocks"].items()) or "-",
        )
    console.print(table)
    return summaries


def write_report_json(path: Path, network: str, summaries: list[dict]) -> None:
    """Writes the report's summaries as JSON (the folder made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"network": network, "users": summaries}, indent=2, default=str))
