"""Tops up the example users of a local market: mint, deposit, opt in, allow buys, protect.

The users, their deposits, their own on-chain limits and their protective exits come
from the keeper's users file (data/config/users.yaml, each user's ``fund`` block and
``protections``): one source of truth for the keepers and for funding. Idempotent: each
user is brought to the configured vault balance, limits and protections, and a second
run sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ape import accounts, project

from keepers.base.errors import SentinelError
from keepers.base.units import to_base_units
from keepers.chain.deployment import DeploymentRecord
from keepers.chain.onchain import require_local_chain
from keepers.settings.keeper import ExitProtection, UserConfig
from keepers.settings.network import NetworkSpec
from strategies.exits import Protection


def fund_users(users: Sequence[UserConfig], spec: NetworkSpec, record: DeploymentRecord,
               report: Callable[[str], None]) -> int:
    """Brings every user with a ``fund`` block to its deposits and limits, and every user
    with a test account to its protections; returns transactions sent."""
    require_local_chain("funding test users (minting test tokens)")
    vault = project.Vault.at(record.address_of("Vault"))
    executor = project.Executor.at(record.address_of("Executor"))
    sent = 0
    for user_config in users:
        funding = user_config.fund
        if user_config.test_account is None or (funding is None and not user_config.protections):
            continue
        user = accounts.test_accounts[user_config.test_account]
        actions: list[str] = []
        if funding is not None:
            sent += _fund(user_config, user, spec, record, vault, executor, actions)
        sent += _protect(user_config, user, spec, record, executor, actions)
        report(f"{user_config.id} ({user.address}): " + ("; ".join(actions) if actions else "already funded"))
    return sent


def _fund(user_config: UserConfig, user, spec: NetworkSpec, record: DeploymentRecord, vault, executor,
          actions: list[str]) -> int:
    """Brings the user to the ``fund`` block's deposits and on-chain limits; returns transactions sent."""
    funding = user_config.fund
    sent = 0
    where = f"users.{user_config.id}.fund"
    buy_allowed = set(user_config.tokens if funding.buy_allowed is None else funding.buy_allowed)
    for field_name, symbols in (("deposits", funding.deposits), ("max_amount_per_trade", funding.max_amount_per_trade),
                                ("buy_allowed", buy_allowed)):
        unknown = set(symbols) - {token.symbol for token in spec.all_tokens}
        if unknown:
            raise SentinelError(f"{where}.{field_name}: unknown token(s) {sorted(unknown)} on this network")
    for symbol, amount in funding.deposits.items():
        token = project.MockToken.at(record.tokens[symbol])
        target = to_base_units(amount, spec.token(symbol).decimals, f"{where}.deposits.{symbol}")
        missing = target - vault.balanceOf(user, token)
        if missing > 0:
            token.mint(user, missing, sender=user)
            token.approve(vault, missing, sender=user)
            vault.deposit(token, missing, sender=user)
            sent += 3
            actions.append(f"deposited {amount} {symbol}")
    limits = executor.userLimits(user)
    if (limits.enabled, limits.maxSlippageBps) != (True, funding.max_slippage_bps):
        executor.setUserLimits(True, funding.max_slippage_bps, sender=user)
        sent += 1
        actions.append(f"opted in at {funding.max_slippage_bps} bps")
    if limits.minTradeInterval != funding.min_trade_interval_seconds:
        executor.setMinTradeInterval(funding.min_trade_interval_seconds, sender=user)
        sent += 1
        actions.append(f"at most one trade per {funding.min_trade_interval_seconds} s")
    budget = to_base_units(funding.daily_loss_budget_usd, 18, f"{where}.daily_loss_budget_usd")
    if executor.lossBudget(user).dailyBudgetUsd != budget:
        executor.setDailyLossBudget(budget, sender=user)
        sent += 1
        actions.append(f"loses at most {funding.daily_loss_budget_usd} USD/day")
    minimum = to_base_units(funding.min_trade_value_usd, 18, f"{where}.min_trade_value_usd")
    if limits.minTradeValueUsd != minimum:
        executor.setMinTradeValue(minimum, sender=user)
        sent += 1
        actions.append(f"trades of at least {funding.min_trade_value_usd} USD")
    if limits.maxOracleAge != funding.max_oracle_age_seconds:
        executor.setMaxOracleAge(funding.max_oracle_age_seconds, sender=user)
        sent += 1
        age = funding.max_oracle_age_seconds
        actions.append(f"oracle answers at most {age} s old" if age else "oracle answers as old as each feed allows")
    for token in spec.tokens:  # the quote token is always allowed
        allowed = token.symbol in buy_allowed
        if executor.isBuyAllowed(user, record.tokens[token.symbol]) != allowed:
            executor.setBuyAllowed(record.tokens[token.symbol], allowed, sender=user)
            sent += 1
            actions.append(f"{'may' if allowed else 'may not'} buy {token.symbol}")
    for symbol, amount in funding.max_amount_per_trade.items():
        token_address = record.tokens[symbol]
        limit = to_base_units(amount, spec.token(symbol).decimals, f"{where}.max_amount_per_trade.{symbol}")
        if executor.maxAmountPerTrade(user, token_address) != limit:
            executor.setMaxAmountPerTrade(token_address, limit, sender=user)
            sent += 1
            actions.append(f"max {amount} {symbol}/trade")
    return sent


def _protect(user_config: UserConfig, user, spec: NetworkSpec, record: DeploymentRecord, executor,
             actions: list[str]) -> int:
    """Brings the user's protections on the Executor to the users file's, from the user's own
    account: set where the stored values differ or an exit spent it (setting starts it again),
    removed where the file has none; returns transactions sent (none when the chain agrees)."""
    protectable = {token.symbol for token in spec.tokens}  # never the quote token: exits sell into it
    unknown = set(user_config.protections) - protectable
    if unknown:
        raise SentinelError(f"users.{user_config.id}.protections: unknown token(s) {sorted(unknown)} on this network; "
                            f"protect one of {sorted(protectable)}")
    sent = 0
    for token in spec.tokens:
        configured = user_config.protections.get(token.symbol)
        wanted = Protection() if configured is None else configured.protection()
        stored = executor.protection(user, record.tokens[token.symbol])
        held = Protection(stop_loss_e18=stored.stopLossUsd, take_profit_e18=stored.takeProfitUsd,
                          trailing_bps=stored.trailingBps, bounty_bps=stored.bountyBps,
                          grace_seconds=stored.gracePeriod)
        if held == wanted and not (wanted.active and stored.startedAt == 0):
            continue
        executor.setProtection(record.tokens[token.symbol], wanted.stop_loss_e18, wanted.take_profit_e18,
                               wanted.trailing_bps, wanted.bounty_bps, wanted.grace_seconds, sender=user)
        sent += 1
        actions.append(_described(token.symbol, configured))
    return sent


def _described(symbol: str, protection: ExitProtection | None) -> str:
    """A protection as fund's report line names it."""
    if protection is None:
        return f"no protection of {symbol}"
    triggers = [text for value, text in ((protection.stop_loss_usd, f"stop-loss {protection.stop_loss_usd} USD"),
                                         (protection.take_profit_usd, f"take-profit {protection.take_profit_usd} USD"),
                                         (protection.trailing_pct, f"trailing stop {protection.trailing_pct}%"))
                if value is not None]
    return (f"{symbol} protected: {', '.join(triggers)} "
            f"(bounty {protection.bounty_bps} bps after {protection.grace_seconds} s)")
