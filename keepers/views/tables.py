"""The terminal forms of `ape run keeper status` and `ape run keeper report`: compact
(the default) fits an 80-column terminal, as a person on a server reads it: a few
labelled lines per user, each wrapped with an indent; ``wide`` is one table row per user.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from rich.console import Console
from rich.table import Table

from keepers.views.report import UserReport
from keepers.views.status import KeeperStatus

COLUMNS = 80


def _lines(console: Console, text: str, *, indent: str = "    ") -> None:
    """Prints ``text`` wrapped to COLUMNS, its continuation lines indented (no markup read)."""
    # A word longer than a line (a hash, a URL) stays whole, to be copied.
    console.print(textwrap.fill(text, COLUMNS, subsequent_indent=indent, break_on_hyphens=False,
                                break_long_words=False),
                  markup=False, highlight=False, soft_wrap=True)


def print_status(console: Console, status: KeeperStatus, network: str, *, wide: bool = False) -> int:
    """Prints the users, heartbeats and pending admin operations (``wide``: as one table);
    returns the exit code (1 when the dead-man check fails: no keeper beat recently)."""
    if wide:
        table = Table(title=f"Keepers on {network}")
        for column in ("user", "vault value", "balances", "positions", "PnL (realised / open)", "locks", "last cycle"):
            table.add_column(column)
        for user in status.users:
            table.add_row(user.user_id, _value(user.value_quote), user.balances_text, user.positions_text,
                          user.pnl_text, user.locks_text, user.last_cycle_text)
        console.print(table)
    else:
        _lines(console, f"Keepers on {network}")
        for user in status.users:
            _lines(console, f"{user.user_id}  value {_value(user.value_quote)}  PnL (realised / open) {user.pnl_text}")
            for label, text in (("balances", user.balances_text), ("positions", user.positions_text),
                                ("locks", user.locks_text), ("last cycle", user.last_cycle_text)):
                _lines(console, f"  {label}: {text}", indent="      ")
    for line in status.heartbeat_lines:
        _lines(console, line)
    _lines(console, f"{len(status.admin_ops_lines)} pending admin operation(s)")
    for line in status.admin_ops_lines:
        _lines(console, f"  {line}", indent="      ")
    if status.global_kill_switch:
        console.print(f"[red]GLOBAL KILL SWITCH: {status.global_kill_switch}[/red]")
    if not status.alive:
        console.print(f"[red]DEAD MAN: {status.dead_reason}[/red]")
        return 1
    return 0


def print_report(console: Console, reports: list[UserReport], quote: str, *, wide: bool = False) -> list[dict]:
    """Prints each user's PnL, trades, win rate, costs and risk blocks (``wide``: one table
    row each); returns the users' summaries, as `--json` writes them."""
    summaries = [report.summary() for report in reports]
    rows = [_report_cells(item) for item in summaries]
    if wide:
        table = Table(title=f"Keeper report ({quote})")
        for column in ("user", "realised PnL", "return", "trades", "failed", "round trips", "win rate", "fees",
                       "price impact", "gas (ETH)", "risk blocks"):
            table.add_column(column)
        for cells in rows:
            table.add_row(*cells.values())
        console.print(table)
        return summaries
    _lines(console, f"Keeper report ({quote})")
    for cells in rows:
        _lines(console, f"{cells['user']}  PnL {cells['pnl']}  return {cells['return']}  win rate {cells['win']}")
        _lines(console, f"  trades {cells['trades']} mined, {cells['failed']} failed; round trips {cells['trips']}",
               indent="      ")
        _lines(console, f"  costs: fees {cells['fees']}, price impact {cells['impact']}, gas {cells['gas']} ETH",
               indent="      ")
        _lines(console, f"  risk blocks: {cells['blocks']}", indent="      ")
    return summaries


def _report_cells(item: dict) -> dict[str, str]:
    """One user's report figures as text, in the wide table's column order."""
    stats = item["stats"] or {}
    return {
        "user": item["user"], "pnl": f"{item['realised_pnl_quote']:,.2f}",
        "return": f"{stats['Return [%]']:.2f}%" if stats.get("Return [%]") is not None else "-",
        "trades": str(item["trades_mined"]), "failed": str(item["trades_failed"]),
        "trips": f"{item['round_trips_closed']} closed / {item['round_trips_open']} open",
        "win": f"{item['win_rate_pct']:.0f}%" if item["win_rate_pct"] is not None else "-",
        "fees": f"{item['fees_quote']:,.2f}", "impact": f"{item['price_impact_quote']:,.2f}",
        "gas": f"{item['gas_eth']:.6f}",
        "blocks": ", ".join(f"{rule} {count}" for rule, count in item["risk_blocks"].items()) or "-",
    }


def _value(value_quote: float | None) -> str:
    return f"{value_quote:,.2f}" if value_quote is not None else "-"


def write_report_json(path: Path, network: str, summaries: list[dict]) -> None:
    """Writes the report's summaries as JSON (the folder made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"network": network, "users": summaries}, indent=2, default=str))
