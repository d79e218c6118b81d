"""Builds a keeper's context and checks it against the chain before any cycle runs.

Every check is a one-line ``SentinelError`` naming the field and the fix: the
deployment record matches the chain, tokens have code and the configured decimals,
each user's tokens and strategies resolve, each enabled user has opted in on the
Executor, allows keepers to buy each of their tokens and allows the configured trade size, the keeper account holds the keeper
role. Then every trade left unfinished by an earlier run is reconciled with the chain,
and every recently mined one is checked again (reorgs).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Collection

from ape import accounts, chain

from keepers.accounts import resolve_account
from keepers.admin_ops import watch_deployment
from keepers.chain_client import ChainClient
from keepers.config import KeeperConfig, UserConfig
from keepers.cycle import KeeperContext
from keepers.deployment import DeploymentRecord
from keepers.errors import SentinelError
from keepers.journal import REORG_DEPTH_BLOCKS, Journal
from keepers.network_config import NetworkSpec
from keepers.risk import RiskManager
from keepers.sender import TransactionSender
from keepers.store import MINED, UNFINISHED, Store
from keepers.units import to_base_units
from strategies.base import Strategy
from strategies.config import StrategyConfigError, load_strategy_config
from strategies.registry import StrategyRegistryError, build_strategy, strategy_class


def build_context(
    config: KeeperConfig, spec: NetworkSpec, record: DeploymentRecord, store: Store, *, local_chain: bool,
    users: tuple[UserConfig, ...], check_users: bool = True,
) -> KeeperContext:
    """Checks everything and returns the context a cycle runs in."""
    settings = config.settings
    keeper = resolve_account(settings.keeper_account, role="keeper", local=local_chain, option="keeper_account",
                             unattended=True)
    client = ChainClient(spec=spec, record=record, keeper=keeper)
    client.check_system()
    client.connect(local_chain=local_chain)
    strategies = user_strategies(config, users)
    addresses = {user.id: user_address(user, local_chain) for user in users}
    if check_users:
        for user in users:
            if user.enabled:
                check_user_on_chain(user, client, addresses[user.id], spec)
    keeper_id = settings.keeper_id or f"{socket.gethostname()}:{os.getpid()}"
    journal = Journal(
        store=store, client=client, sender=TransactionSender(keeper, timeout_seconds=settings.tx_timeout_seconds),
        keeper_id=keeper_id, quote_symbol=spec.quote.symbol, tolerance_bps=settings.tolerance_bps,
        dry_run=settings.dry_run,
    )
    watch = watch_deployment(record, settings.admin_ops_refresh_seconds)
    return KeeperContext(config=config, spec=spec, store=store, client=client, journal=journal, keeper_id=keeper_id,
                         user_addresses=addresses, user_strategies=strategies, admin_watch=watch)


def reconcile_all(context: KeeperContext, report: Callable[[str], None],
                  user_ids: Collection[str] | None = None) -> int:
    """Settles every unfinished trade of the configured users (or of ``user_ids``), and
    checks the ones mined in the last REORG_DEPTH_BLOCKS blocks again (a reorg may have
    dropped them); returns how many rows were looked at."""
    store, journal = context.store, context.journal
    oldest_unsettled_block = chain.blocks.head.number - REORG_DEPTH_BLOCKS
    rows = [*store.trades(statuses=UNFINISHED),
            *(row for row in store.trades(statuses=[MINED]) if row.block_number >= oldest_unsettled_block)]
    users = {user.id: user for user in context.config.users if user_ids is None or user.id in user_ids}
    risks: dict[str, RiskManager] = {}  # one per user, not per trade
    settled = 0
    for row in rows:
        user = users.get(row.user_id)
        if user is None:
            continue
        if user.id not in risks:
            risks[user.id] = RiskManager(store, user.id, user.risk)
        final = (journal.recheck if row.status == MINED else journal.reconcile)(row, risks[user.id])
        if final is not row:  # the same row back: still pending, or a mined trade still in place
            report(f"reconciled trade {row.trade_id[:12]}… of {row.user_id}: {row.status} -> {final.status}")
        settled += 1
    return settled


def user_address(user: UserConfig, local_chain: bool) -> str:
    """The user's address (a test account's on local chains)."""
    if user.address is not None:
        return user.address
    if not local_chain:
        raise SentinelError(f"users.{user.id}.test_account: test accounts exist only on local chains; give address")
    if user.test_account >= len(accounts.test_accounts):
        raise SentinelError(f"users.{user.id}.test_account: only {len(accounts.test_accounts)} test accounts")
    return accounts.test_accounts[user.test_account].address


def user_strategies(config: KeeperConfig, users: tuple[UserConfig, ...]) -> dict[tuple[str, str], tuple[Strategy, ...]]:
    """(user, token) -> the strategies it runs: the user's own list, with each
    strategy's parameters from the strategies file for the token's price series."""
    settings = config.settings
    try:
        strategy_config = load_strategy_config(settings.strategies_file)
    except StrategyConfigError as error:
        raise SentinelError(str(error)) from None
    result = {}
    for user in users:
        for token in user.tokens:
            where = f"users.{user.id}"
            if token not in settings.price_series:
                raise SentinelError(
                    f"{where}.tokens: {token} has no price series; add it to price_series in {config.config_file.name}")
            configured = {s.name: s for s in strategy_config.strategies_for(settings.price_series[token])}
            names = user.strategies.get(token)
            if names is None:
                result[(user.id, token)] = tuple(configured.values())
                continue
            try:
                chosen = [strategy_class(name).name for name in names]
                result[(user.id, token)] = tuple(configured.get(name) or build_strategy(name) for name in chosen)
            except StrategyRegistryError as error:
                raise SentinelError(f"{where}.strategies.{token}: {error}") from None
    return result


def check_user_on_chain(user: UserConfig, client: ChainClient, address: str, spec: NetworkSpec) -> None:
    """The user's tokens exist, they opted in, they allow keepers to buy each of them, and
    their per-trade maximum of the quote token allows the configured BUY size."""
    for token in user.tokens:
        if token not in client.record.tokens or token == spec.quote.symbol:
            raise SentinelError(
                f"users.{user.id}.tokens: {token} is not a traded token of this network; "
                f"choose from {', '.join(t.symbol for t in spec.tokens)}")
    limits = client.executor.userLimits(address)
    if not limits.enabled:
        raise SentinelError(
            f"users.{user.id}: {address} has not enabled trading on Executor {client.executor.address}; "
            "the user calls setUserLimits(true, maxSlippageBps) (or set enabled: false)")
    for token in user.tokens:
        if not client.executor.isBuyAllowed(address, client.token(token)):
            raise SentinelError(
                f"users.{user.id}.tokens: {address} has not allowed keepers to buy {token} on Executor "
                f"{client.executor.address}; the user calls setBuyAllowed({client.token(token)}, true) "
                f"(or remove {token} from tokens)")
    quote = spec.quote.symbol
    maximum = client.executor.maxAmountPerTrade(address, client.token(quote))
    if user.sizing.quote_amount is not None:
        size = to_base_units(user.sizing.quote_amount, spec.quote.decimals, f"users.{user.id}.sizing.quote_amount")
        if size > maximum:
            raise SentinelError(
                f"users.{user.id}.sizing.quote_amount: {user.sizing.quote_amount} {quote} is above the user's on-chain "
                f"maximum per trade ({maximum / 10 ** spec.quote.decimals:g} {quote}); lower it or raise the maximum")

