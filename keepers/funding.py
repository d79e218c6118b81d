"""Tops up the example users of a local market: mint, deposit, opt in.

Idempotent: each user is brought to the configured vault balance and limits, and a
second run sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from ape import accounts, project

from keepers.deployment import DeploymentRecord
from keepers.network_config import NetworkSpec
from keepers.units import to_base_units


def fund_users(spec: NetworkSpec, record: DeploymentRecord, report: Callable[[str], None]) -> int:
    """Brings every configured user to its deposits and limits; returns transactions sent."""
    vault = project.Vault.at(record.address_of("Vault"))
    executor = project.Executor.at(record.address_of("Executor"))
    sent = 0
    for user_spec in spec.users:
        user = accounts.test_accounts[user_spec.test_account]
        actions = []
        for symbol, amount in user_spec.deposits.items():
            token = project.MockToken.at(record.tokens[symbol])
            target = to_base_units(amount, spec.token(symbol).decimals, f"users.{user_spec.name}.deposits.{symbol}")
            missing = target - vault.balanceOf(user, token)
            if missing > 0:
                token.mint(user, missing, sender=user)
                token.approve(vault, missing, sender=user)
                vault.deposit(token, missing, sender=user)
                sent += 3
                actions.append(f"deposited {amount} {symbol}")
        limits = executor.userLimits(user)
        if (limits.enabled, limits.maxSlippageBps) != (True, user_spec.max_slippage_bps):
            executor.setUserLimits(True, user_spec.max_slippage_bps, sender=user)
            sent += 1
            actions.append(f"opted in at {user_spec.max_slippage_bps} bps")
        if limits.minTradeInterval != user_spec.min_trade_interval_seconds:
            executor.setMinTradeInterval(user_spec.min_trade_interval_seconds, sender=user)
            sent += 1
            actions.append(f"at most one trade per {user_spec.min_trade_interval_seconds} s")
        budget = to_base_units(user_spec.daily_loss_budget_usd, 18, f"users.{user_spec.name}.daily_loss_budget_usd")
        if executor.lossBudget(user).dailyBudgetUsd != budget:
            executor.setDailyLossBudget(budget, sender=user)
            sent += 1
            actions.append(f"loses at most {user_spec.daily_loss_budget_usd} USD/day")
        for symbol, amount in user_spec.max_amount_per_trade.items():
            token_address = record.tokens[symbol]
            limit = to_base_units(amount, spec.token(symbol).decimals, f"users.{user_spec.name}.max_amount_per_trade")
            if executor.maxAmountPerTrade(user, token_address) != limit:
                executor.setMaxAmountPerTrade(token_address, limit, sender=user)
                sent += 1
                actions.append(f"max {amount} {symbol}/trade")
        report(f"{user_spec.name} ({user.address}): " + ("; ".join(actions) if actions else "already funded"))
    return sent
