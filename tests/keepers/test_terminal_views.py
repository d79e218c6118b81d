"""`keeper status` and `keeper report` in a terminal: the compact form fits 80 columns
whatever the users hold (long lists wrap, indented), the wide form is one table row per
user; both show every figure. Printed through rich's real Console into a recording."""

from __future__ import annotations

from collections import Counter

from rich.console import Console

from keepers.views.report import RoundTrip, UserReport
from keepers.views.status import KeeperStatus, UserStatus
from keepers.views.tables import print_report, print_status

TOKENS = ("USDC", "WETH", "WBTC", "LTC", "LINK")


def status() -> KeeperStatus:
    users = [UserStatus(
        user_id=user, value_quote=12_345_678.9 * (index + 1),
        balances_text=", ".join(f"{1_234.56789 * (n + 1):,.6g} {symbol}" for n, symbol in enumerate(TOKENS)),
        positions_text=", ".join(f"0.412345 {symbol} ({strategy})" for symbol in TOKENS[1:]
                                 for strategy in ("bollinger", "rsi_sma")),
        pnl_text="1,234.56 / -98.76",
        locks_text="cooldown WETH until 2024-09-03 00:00; kill_switch * (kill switch)",
        last_cycle_text="12 s ago, error: ChainError: the node at http://127.0.0.1:8545 did not answer in 30 s")
        for index, user in enumerate(("alice", "bob-the-long-named-user"))]
    return KeeperStatus(users=users, alive=True, heartbeat_lines=[
        ("keeper keeper-on-a-host-with-a-long-name-0123456789 (pid 123456): last seen 4 s ago, "
         "started 2024-09-01 00:00:00 UTC")], admin_ops_lines=[
        ("Executor.setOracleBounds ready at 2024-09-03 00:00:00 UTC (in 1.0 d), operation 0x1234abcd, "
         "affects users")])


def report() -> UserReport:
    trip = RoundTrip("WETH", "bollinger", opened=None, cost_quote=1_000, pnl_quote=123.45, fee_quote=6.01,
                     impact_quote=1.5, gas_eth=0.000321, closed=object())
    return UserReport(user_id="alice", round_trips=[trip, RoundTrip("WBTC", "macd", opened=None)], trades_mined=283,
                      trades_failed=2, blocks=Counter({"kill_switch": 2, "cooldown": 14, "loss_streak": 3,
                                                       "daily_loss_budget": 1, "feed_stale": 5}),
                      realised_quote=123.45, stats={"Return [%]": 1.2345})


def printed(print_view, width: int, **options) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    print_view(console, **options)
    return console.export_text().splitlines()


def test_the_compact_status_fits_80_columns_and_the_wide_one_is_a_table():
    compact = printed(lambda console, **o: print_status(console, status(), "ethereum:local", **o), 200)
    wide = printed(lambda console, **o: print_status(console, status(), "ethereum:local", **o), 200, wide=True)
    assert max(len(line) for line in compact) <= 80 < max(len(line) for line in wide)
    text = " ".join(line.strip() for line in compact)
    for figure in ("alice  value 12,345,678.90", "PnL (realised / open) 1,234.56 / -98.76", "6,172.84 LINK",
                   "0.412345 LINK (rsi_sma)", "kill_switch * (kill switch)", "did not answer in 30 s",
                   "last seen 4 s ago", "1 pending admin operation(s)", "operation 0x1234abcd, affects users"):
        assert figure in text, figure
    assert [line for line in compact if line.startswith("bob")] == [
        "bob-the-long-named-user  value 24,691,357.80  PnL (realised / open) 1,234.56 /",
    ]  # the user's first line wraps, its continuation indented
    assert "    -98.76" in compact and "      LINK" in compact  # a user's labelled lines wrap deeper


def test_the_compact_report_fits_80_columns_and_the_wide_one_is_a_table():
    compact = printed(lambda console, **o: print_report(console, [report()], "USDC", **o), 200)
    wide = printed(lambda console, **o: print_report(console, [report()], "USDC", **o), 200, wide=True)
    assert max(len(line) for line in compact) <= 80 < max(len(line) for line in wide)
    assert compact[:4] == [
        "Keeper report (USDC)",
        "alice  PnL 123.45  return 1.23%  win rate 100%",
        "  trades 283 mined, 2 failed; round trips 1 closed / 1 open",
        "  costs: fees 6.01, price impact 1.50, gas 0.000321 ETH",
    ]
    assert " ".join(line.strip() for line in compact[4:]) == (
        "risk blocks: kill_switch 2, cooldown 14, loss_streak 3, daily_loss_budget 1, feed_stale 5")
    assert "kill_switch 2" in "".join(wide)
