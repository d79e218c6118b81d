"""`ape run fund` sets the users file's protective exits on the Executor from each user's
own account, sends nothing while the chain holds the same values, changes or removes what
the file changed, and starts a protection an exit spent again. One deploy for the file."""

from __future__ import annotations

import yaml
from ape import accounts, chain, project
from helpers_keeper import deploy_local_system

from keepers.deploy.funding import fund_users
from keepers.settings.keeper import load_users

USD = 10**18
BOB = {"id": "bob", "test_account": 4, "tokens": ["WBTC", "WETH"], "sizing": {"quote_amount": 100},
       "fund": {"deposits": {"USDC": 1_000, "WETH": 1}, "max_slippage_bps": 100, "daily_loss_budget_usd": 100},
       "protections": {"WBTC": {"trailing_pct": 15, "bounty_bps": 100, "grace_seconds": 3_600},
                       "WETH": {"stop_loss_usd": 300}}}
# No fund block: protected all the same (a local test account signs).
ERIN = {"id": "erin", "test_account": 6, "tokens": ["LTC"], "sizing": {"quote_amount": 100},
        "protections": {"LTC": {"take_profit_usd": 100.25}}}


def stored(system, user_index: int, symbol: str) -> tuple:
    executor = project.Executor.at(system.record.address_of("Executor"))
    held = executor.protection(accounts.test_accounts[user_index], system.record.tokens[symbol])
    return (held.stopLossUsd, held.takeProfitUsd, held.trailingBps, held.bountyBps, held.gracePeriod, held.active,
            held.startedAt > 0)


def fund(system, users: list[dict]) -> tuple[int, list[str]]:
    (system.folder / "users.yaml").write_text(yaml.safe_dump({"users": users}))
    lines: list[str] = []
    sent = fund_users(load_users(system.folder / "users.yaml"), system.spec, system.record, report=lines.append)
    return sent, lines


def test_fund_sets_the_protections_sends_nothing_on_a_rerun_and_follows_the_file(tmp_path):
    system = deploy_local_system(tmp_path, [BOB, ERIN], "sqlite://")  # funds them once
    assert stored(system, 4, "WBTC") == (0, 0, 1_500, 100, 3_600, True, True)
    assert stored(system, 4, "WETH") == (300 * USD, 0, 0, 0, 0, True, True)
    assert stored(system, 6, "LTC") == (0, 100_250_000_000_000_000_000, 0, 0, 0, True, True)
    assert stored(system, 4, "LTC") == (0, 0, 0, 0, 0, False, False)  # never set

    blocks = chain.blocks.head.number
    bob, erin = accounts.test_accounts[4].address, accounts.test_accounts[6].address
    assert fund(system, [BOB, ERIN]) == (0, [f"bob ({bob}): already funded", f"erin ({erin}): already funded"])
    assert chain.blocks.head.number == blocks

    changed = {**BOB, "protections": {"WBTC": {"trailing_pct": 10, "bounty_bps": 100, "grace_seconds": 3_600}}}
    sent, lines = fund(system, [changed, ERIN])
    assert sent == 2
    assert "no protection of WETH; WBTC protected: trailing stop 10% (bounty 100 bps after 3600 s)" in lines[0]
    assert stored(system, 4, "WBTC")[2] == 1_000
    assert stored(system, 4, "WETH")[:6] == (0, 0, 0, 0, 0, False)
    assert fund(system, [changed, ERIN])[0] == 0

    # An exit spends bob's WETH stop-loss (a keeper executes it below 300 USD): fund sets it
    # again, as it tops up the WETH the exit sold.
    assert fund(system, [BOB, ERIN])[0] == 2  # back to the first file
    system.move({"WETH": 0.5})  # 395.11 -> 197.56 USD
    executor = project.Executor.at(system.record.address_of("Executor"))
    executor.executeExit(accounts.test_accounts[4], system.record.tokens["WETH"], 0, 0,
                         system.record.address_of("UniswapV2Router02"), chain.blocks.head.timestamp + 600,
                         sender=accounts.test_accounts[1])
    assert stored(system, 4, "WETH")[5:] == (True, False)  # active, spent
    sent, lines = fund(system, [BOB, ERIN])
    assert "deposited 1 WETH" in lines[0] and "WETH protected: stop-loss 300 USD (bounty 0 bps after 0 s)" in lines[0]
    assert sent == 3 + 1 and stored(system, 4, "WETH") == (300 * USD, 0, 0, 0, 0, True, True)
    assert fund(system, [BOB, ERIN])[0] == 0
