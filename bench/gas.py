"""Gas report: what custody through Vault + Executor costs against a plain router swap.

Run:  make gas   (or: python bench/gas.py with SOLCX_BINARY_PATH and anvil on PATH)

Starts its own anvil through Ape (``ethereum:local:foundry``), deploys the market (test
tokens, Chainlink mock feeds, the real Uniswap V2 factory/router from npm, Vault and
Executor wired as in production) and records ``receipt.gas_used`` of:
- ``Vault.deposit``: a user's first deposit of a token the vault already holds, then a
  repeat deposit;
- ``Vault.withdraw``: part of the balance, then all of it;
- ``Executor.executeTrade`` USDC->WETH and WETH->USDC, and for the same amount from the
  same pool state (chain snapshot) an EOA's ``swapExactTokensForTokens`` and
  ``swapExactTokensForTokensSupportingFeeOnTransferTokens`` (the variant the vault uses);
- ``Executor.executeExit`` of the user's whole WETH balance (5 WETH): a keeper's stop-loss
  exit, a keeper's trailing-stop exit (one more feed read: the named round), a non-keeper's
  arming call and its execution after the grace period (paying the bounty), against an EOA
  swap of the same amount; and a keeper buy of a protected token (it restarts the protection).

Fair comparison: the EOA already holds both tokens and has approved the router, as the
vault holds both tokens; every block is 12 s after the last (anvil's timestamp interval),
so each swap pays the pair's cumulative-price update alike; a new tradeId each time.
Gas is deterministic: the same code gives the same numbers on every run.

Writes bench/results/gas.json and bench/results/gas.md; anvil stops when done.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PRICES_USD = {"WETH": 2_000, "USDC": 1}
DECIMALS = {"WETH": 18, "USDC": 6}
FEED_DECIMALS = 8
POOL_DEPTH_USD = 4_000_000
SLIPPAGE_BPS = 100
LOSS_BUDGET_USD = 1_000 * 10**18  # each trade's loss against the oracle is counted in it
BLOCK_SECONDS = 12
# Trade and custody amounts in whole tokens.
TRADES = [("USDC", "WETH", 1_000), ("WETH", "USDC", 0.5)]
DEPOSIT = {"USDC": 10_000, "WETH": 5}
EXIT_BOUNTY_BPS, EXIT_GRACE = 100, 600  # the measured protection's bounty and grace period


def base_units(symbol: str, whole: float) -> int:
    return int(round(whole * 10 ** DECIMALS[symbol]))


def deploy_market(project, accounts, uniswap_v2_container):
    """Tokens, feeds, Uniswap V2 with one WETH/USDC pool at the feed prices, Vault and
    Executor wired: the production wiring on local doubles."""
    owner, keeper = accounts[0], accounts[1]
    tokens = {
        symbol: owner.deploy(project.MockToken, f"Test {symbol}", symbol, DECIMALS[symbol]) for symbol in DECIMALS
    }
    feeds = {
        symbol: owner.deploy(project.MockFeed, FEED_DECIMALS, PRICES_USD[symbol] * 10**FEED_DECIMALS)
        for symbol in DECIMALS
    }
    weth9 = owner.deploy(uniswap_v2_container("WETH9"))
    factory = owner.deploy(uniswap_v2_container("UniswapV2Factory"), owner.address)
    router = owner.deploy(uniswap_v2_container("UniswapV2Router02"), factory.address, weth9.address)
    liquidity = {symbol: base_units(symbol, POOL_DEPTH_USD / 2 / PRICES_USD[symbol]) for symbol in DECIMALS}
    for symbol, amount in liquidity.items():
        tokens[symbol].mint(owner, amount, sender=owner)
        tokens[symbol].approve(router, amount, sender=owner)
    router.addLiquidity(
        tokens["WETH"], tokens["USDC"], liquidity["WETH"], liquidity["USDC"], 0, 0, owner, 2**63, sender=owner
    )

    from keepers.chain.access import role_calls, send

    manager = owner.deploy(project.SentinelAccessManager, owner)
    vault = owner.deploy(project.Vault, manager)
    executor = owner.deploy(project.Executor, manager, vault, tokens["USDC"])
    for call in role_calls(manager, {"Vault": vault, "Executor": executor}, owner.address, None):
        send(manager, call, owner)
    vault.setExecutor(executor, sender=owner)
    executor.addKeeper(keeper, sender=owner)
    executor.addRouter(router, sender=owner)
    for symbol, token in tokens.items():
        vault.listToken(token, sender=owner)
        executor.setFeed(token, feeds[symbol], 3_600, 0, 0, sender=owner)
    return tokens, feeds, router, vault, executor


def measure(project, accounts, chain, uniswap_v2_container) -> dict:
    owner, keeper, user, other_user, trader = (accounts[i] for i in range(5))
    tokens, feeds, router, vault, executor = deploy_market(project, accounts, uniswap_v2_container)
    for account in (user, other_user, trader):
        for symbol, token in tokens.items():
            token.mint(account, base_units(symbol, DEPOSIT[symbol]) * 4, sender=account)
            token.approve(vault, 2**256 - 1, sender=account)
            token.approve(router, 2**256 - 1, sender=account)
    usdc = tokens["USDC"]
    amount = base_units("USDC", DEPOSIT["USDC"])

    # Custody: the vault already holds USDC (another user's), so "first" is the user's first.
    vault.deposit(usdc, amount, sender=other_user)
    custody = {
        "deposit_first": vault.deposit(usdc, amount, sender=user).gas_used,
        "deposit_repeat": vault.deposit(usdc, amount, sender=user).gas_used,
        "withdraw_partial": vault.withdraw(usdc, amount // 2, sender=user).gas_used,
    }
    custody["withdraw_full"] = vault.withdraw(usdc, vault.balanceOf(user, usdc), sender=user).gas_used

    # Trades: the user holds both tokens in the vault and has opted in; each measurement
    # starts from the same snapshot, so pool reserves and storage are alike.
    for symbol, token in tokens.items():
        vault.deposit(token, base_units(symbol, DEPOSIT[symbol]), sender=user)
        executor.setMaxAmountPerTrade(token, base_units(symbol, DEPOSIT[symbol]), sender=user)
        if symbol != "USDC":  # the quote token needs no allowance
            executor.setBuyAllowed(token, True, sender=user)
    executor.setUserLimits(True, SLIPPAGE_BPS, sender=user)
    executor.setDailyLossBudget(LOSS_BUDGET_USD, sender=user)
    trades = []
    for number, (symbol_in, symbol_out, whole) in enumerate(TRADES, start=1):
        token_in, token_out = tokens[symbol_in], tokens[symbol_out]
        amount_in = base_units(symbol_in, whole)
        floor = executor.oracleFloor(user, token_in, token_out, amount_in)
        path = [token_in, token_out]
        trade_id = number.to_bytes(32, "big")
        calls = {
            "execute_trade": (executor.executeTrade, user, token_in, token_out, amount_in, floor, router),
            "router_swap": (router.swapExactTokensForTokens, amount_in, floor, path, trader),
            "router_swap_fee_on_transfer": (
                router.swapExactTokensForTokensSupportingFeeOnTransferTokens, amount_in, floor, path, trader
            ),
        }
        gas = {}
        for name, (method, *args) in calls.items():
            snapshot = chain.snapshot()
            deadline = chain.pending_timestamp + 600
            if name == "execute_trade":
                receipt = method(*args, deadline, trade_id, sender=keeper)
            else:
                receipt = method(*args, deadline, sender=trader)
            gas[name] = receipt.gas_used
            chain.restore(snapshot)
        trades.append(
            {
                "direction": f"{symbol_in}->{symbol_out}",
                "amount_in": f"{whole} {symbol_in}",
                **gas,
                "overhead_vs_swap": gas["execute_trade"] - gas["router_swap"],
                "ratio_vs_swap": round(gas["execute_trade"] / gas["router_swap"], 2),
                "overhead_vs_fee_on_transfer_swap": gas["execute_trade"] - gas["router_swap_fee_on_transfer"],
                "ratio_vs_fee_on_transfer_swap": round(gas["execute_trade"] / gas["router_swap_fee_on_transfer"], 2),
            }
        )
    exits = measure_exits(chain, tokens, feeds, router, executor, user, keeper, other_user, trader)
    return {"custody": custody, "trades": trades, "exits": exits}


def measure_exits(chain, tokens, feeds, router, executor, user, keeper, hunter, trader) -> dict:
    """executeExit's paths, each from the same snapshot (the user's 5 WETH in the vault)."""
    weth, usdc = tokens["WETH"], tokens["USDC"]
    price_usd = PRICES_USD["WETH"] * 10**18
    amount_in = base_units("WETH", DEPOSIT["WETH"])

    def exit_by(sender, high_round=0):
        return executor.executeExit(user, weth, high_round, 0, router, chain.pending_timestamp + 600, sender=sender)

    def measured(setup) -> int:
        snapshot = chain.snapshot()
        gas = setup()
        chain.restore(snapshot)
        return gas

    def stop_loss_by_keeper():
        executor.setProtection(weth, price_usd, 0, 0, EXIT_BOUNTY_BPS, EXIT_GRACE, sender=user)
        return exit_by(keeper).gas_used

    def trailing_by_keeper():
        executor.setProtection(weth, 0, 0, 500, EXIT_BOUNTY_BPS, EXIT_GRACE, sender=user)
        feeds["WETH"].updateAnswer(2_100 * 10**FEED_DECIMALS, sender=trader)
        high = feeds["WETH"].latestRound()
        feeds["WETH"].updateAnswer(1_990 * 10**FEED_DECIMALS, sender=trader)
        return exit_by(keeper, high).gas_used

    def arm_by_anyone():
        executor.setProtection(weth, price_usd, 0, 0, EXIT_BOUNTY_BPS, EXIT_GRACE, sender=user)
        return exit_by(hunter).gas_used

    def after_grace_by_anyone():
        executor.setProtection(weth, price_usd, 0, 0, EXIT_BOUNTY_BPS, EXIT_GRACE, sender=user)
        exit_by(hunter)
        chain.mine(deltatime=EXIT_GRACE)
        return exit_by(hunter).gas_used

    def router_swap():
        path = [weth, usdc]
        return router.swapExactTokensForTokens(amount_in, 0, path, trader, chain.pending_timestamp + 600,
                                               sender=trader).gas_used  # fmt: skip

    def buy_protected():
        executor.setProtection(weth, price_usd // 2, 0, 500, EXIT_BOUNTY_BPS, EXIT_GRACE, sender=user)
        amount = base_units("USDC", 1_000)
        floor = executor.oracleFloor(user, usdc, weth, amount)
        return executor.executeTrade(user, usdc, weth, amount, floor, router, chain.pending_timestamp + 600,
                                     (99).to_bytes(32, "big"), sender=keeper).gas_used  # fmt: skip

    return {
        "execute_exit_stop_loss_keeper": measured(stop_loss_by_keeper),
        "execute_exit_trailing_keeper": measured(trailing_by_keeper),
        "execute_exit_arm_anyone": measured(arm_by_anyone),
        "execute_exit_after_grace_anyone": measured(after_grace_by_anyone),
        "router_swap_same_amount": measured(router_swap),
        "execute_trade_buy_protected_token": measured(buy_protected),
    }


def render_markdown(report: dict) -> str:
    setup = report["setup"]
    lines = [
        "# Gas report (`make gas`)",
        "",
        f"Local anvil ({setup['anvil']}), solc {setup['solc']} (`{setup['evm_version']}`, "
        f"optimizer {setup['optimizer']}); Uniswap V2 from the npm artifacts; one WETH/USDC pool of "
        f"${POOL_DEPTH_USD:,} at the feed prices; one block every {BLOCK_SECONDS} s. Gas is `receipt.gas_used` "
        "(21,000 intrinsic gas included).",
        "",
        "| Vault operation | gas used |",
        "|---|---:|",
    ]
    names = {
        "deposit_first": "deposit (user's first of the token)",
        "deposit_repeat": "deposit (repeat)",
        "withdraw_partial": "withdraw (part of the balance)",
        "withdraw_full": "withdraw (whole balance)",
    }
    lines += [f"| {names[key]} | {value:,} |" for key, value in report["custody"].items()]
    lines += [
        "",
        "| trade | executeTrade | EOA swapExactTokensForTokens | ratio | overhead | "
        "EOA ...SupportingFeeOnTransferTokens | ratio | overhead |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for trade in report["trades"]:
        lines.append(
            f"| {trade['direction']} ({trade['amount_in']}) | {trade['execute_trade']:,} | "
            f"{trade['router_swap']:,} | {trade['ratio_vs_swap']:.2f}x | +{trade['overhead_vs_swap']:,} | "
            f"{trade['router_swap_fee_on_transfer']:,} | {trade['ratio_vs_fee_on_transfer_swap']:.2f}x | "
            f"+{trade['overhead_vs_fee_on_transfer_swap']:,} |"
        )
    lines += [
        "",
        "The overhead pays for: keeper, router and tradeId checks and the new tradeId slot "
        "(a zero-to-nonzero write), the user's limits (one slot) and buy allow-list entry, "
        "two Chainlink reads with their checks "
        "(each feed's `decimals()` read again against the registered value), "
        "the vault's debit and credit of two balances and two totals, balance measurements "
        "before and after the swap (each checked against its total: no swap of a token in shortfall), setting the router allowance and back to zero, and the "
        "trade's loss against the oracle counted in the user's daily loss budget (one slot).",
        "",
        f"| protective exit (the user's whole {DEPOSIT['WETH']} WETH for USDC) | gas used |",
        "|---|---:|",
    ]
    exit_names = {
        "execute_exit_stop_loss_keeper": "executeExit, stop-loss, by a keeper",
        "execute_exit_trailing_keeper": "executeExit, trailing stop (named round), by a keeper",
        "execute_exit_arm_anyone": "executeExit, a non-keeper's first call (arms)",
        "execute_exit_after_grace_anyone": "executeExit, a non-keeper after the grace period (pays the bounty)",
        "router_swap_same_amount": "EOA swapExactTokensForTokens, same amount",
        "execute_trade_buy_protected_token": "executeTrade USDC->WETH (1,000 USDC) of a protected token",
    }
    lines += [f"| {exit_names[key]} | {value:,} |" for key, value in report["exits"].items()]
    lines += [
        "",
        "An exit reads the user's vault balance, the protection (two slots) and both feeds, marks the "
        "protection spent and swaps through the vault; the trailing stop also reads the named round "
        "(`getRoundData`); a non-keeper's execution also credits the bounty (two balances).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    os.chdir(ROOT)  # Ape's `project` is the project in the current directory
    from ape import accounts, chain, networks, project

    from keepers.chain.uniswap import uniswap_v2_container

    solidity = project.config.get_config("solidity")
    setup = {
        "anvil": "",
        "solc": str(solidity.version),
        "evm_version": str(solidity.evm_version),
        "optimizer": f"{'on' if solidity.optimize else 'off'}, {solidity.optimization_runs} runs",
    }
    with networks.parse_network_choice("ethereum:local:foundry", disconnect_after=True) as provider:
        setup["anvil"] = provider.web3.client_version
        provider.make_request("anvil_setBlockTimestampInterval", [BLOCK_SECONDS])
        report = {"setup": setup, **measure(project, accounts.test_accounts, chain, uniswap_v2_container)}

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gas.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(report)
    (RESULTS / "gas.md").write_text(markdown)
    print(markdown)
    print(f"wrote {RESULTS.relative_to(ROOT)}/gas.json and gas.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
