"""Builds a keeper's context and checks it against the chain before any cycle runs.

Every check is a one-line ``SentinelError`` naming the field and the fix: the
deployment record matches the chain, tokens have code and the configured decimals,
each user's tokens and strategies resolve, each enabled user has opted in on the
Executor, allows keepers to buy each of their tokens and allows the configured trade
size, the keeper account holds the keeper role. Then the trades of every user no live
keeper holds are reconciled with the chain (unfinished, recently mined, dropped); one the
node has held pending past the transaction timeout is replaced with higher fees.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

import numpy as np
from ape import accounts, chain

from keepers.base.clock import now_utc
from keepers.base.errors import SentinelError
from keepers.base.units import to_base_units
from keepers.chain.accounts import resolve_account
from keepers.chain.admin_ops import watch_deployment
from keepers.chain.client import ChainClient
from keepers.chain.deployment import DeploymentRecord
from keepers.chain.sender import TransactionSender
from keepers.engine.bars import backfill_bars, backfill_from_rounds
from keepers.engine.cycle import KeeperContext
from keepers.engine.journal import REORG_DEPTH_BLOCKS, Journal
from keepers.engine.positions import position_row, sleeves
from keepers.engine.risk import RiskManager
from keepers.persistence.store import Store
from keepers.persistence.tables import DROPPED, MINED, SENT, UNFINISHED
from keepers.settings.keeper import KeeperConfig, UserConfig
from keepers.settings.network import NetworkSpec
from strategies.base import Strategy
from strategies.config import StrategyConfigError, load_strategy_config
from strategies.data import PriceData
from strategies.registry import StrategyRegistryError, build_strategy, strategy_class


def build_context(
    config: KeeperConfig, spec: NetworkSpec, record: DeploymentRecord, store: Store, *, local_chain: bool,
    users: tuple[UserConfig, ...], check_users: bool = True,
) -> KeeperContext:
    """Checks everything and returns the context a cycle runs in."""
    settings = config.settings
    keeper = resolve_account(settings.keeper_account, role="keeper", local=local_chain, option="keeper_account",
                             unattended=True)
    client = ChainClient(spec=spec, record=record, keeper=keeper, max_calls_per_read=settings.read_max_calls)
    client.check_system()
    client.connect(local_chain=local_chain)
    strategies = user_strategies(config, users)
    load_compiled(strategies)
    addresses = {user.id: user_address(user, local_chain) for user in users}
    if check_users:
        for user in users:
            if user.enabled:
                check_user_on_chain(user, client, addresses[user.id], spec)
    keeper_id = settings.keeper_id or f"{socket.gethostname()}:{os.getpid()}"
    journal = Journal(
        store=store, client=client, sender=TransactionSender(keeper, timeout_seconds=settings.tx_timeout_seconds),
        keeper_id=keeper_id, quote_symbol=spec.quote.symbol, tolerance_bps=settings.tolerance_bps,
        timeframe_seconds=settings.timeframe_seconds, dry_run=settings.dry_run,
    )
    watch = watch_deployment(record, settings.admin_ops_refresh_seconds)
    return KeeperContext(config=config, spec=spec, store=store, client=client, journal=journal, keeper_id=keeper_id,
                         user_addresses=addresses, user_strategies=strategies, admin_watch=watch)


def reconcile_at_start(context: KeeperContext, users: Sequence[UserConfig], report: Callable[[str], None]) -> int:
    """A keeper's or worker's start: settles the trades of every user no live keeper
    holds, while holding their leases (a held user's trades are settled by its holder's
    cycles: settling them here could mark dropped a trade the holder is about to
    broadcast). A gap in the keeper account's nonces (one lost while later ones wait in
    the node) is closed first (``Journal.close_nonce_gaps``). Returns how many users were
    reconciled."""
    store, owner = context.store, context.keeper_id
    now = now_utc()
    until = now + timedelta(seconds=context.config.settings.lease_seconds)
    leased = set(store.acquire_leases([user.id for user in users], owner, now, until).users)
    held = [user for user in users if user.id in leased]
    try:
        for nonce, cancel in context.journal.close_nonce_gaps(store.trades(statuses=[SENT])).items():
            report(f"nonce {nonce} of the keeper account was lost while later ones waited: cancelled by {cancel}")
        for user in held:
            _reconcile_user(context, user, report)
    finally:
        store.release_leases([user.id for user in held], owner)
    return len(held)


def _reconcile_user(context: KeeperContext, user: UserConfig, report: Callable[[str], None]) -> None:
    """Every unfinished trade of ``user`` settled from the chain; the ones mined in the
    last REORG_DEPTH_BLOCKS blocks checked again (a reorg may have dropped them); the
    dropped ones checked for a trade id the Executor used after all."""
    store, journal = context.store, context.journal
    oldest_unsettled_block = chain.blocks.head.number - REORG_DEPTH_BLOCKS
    risk = RiskManager(store, user.id, user.risk)
    rows = store.trades(user.id, [*UNFINISHED, MINED, DROPPED])  # one read at start, used twice
    mined = [row for row in rows if row.status == MINED]
    if mined and not store.positions(user.id):  # a store from before revision 0005: built once
        held = sleeves(mined, context.client.token_decimals[context.quote])
        store.rebuild_positions(user.id, [position_row(user.id, asset, strategy, sleeve)
                                          for (asset, strategy), sleeve in held.items()])
        report(f"{user.id}: positions built from {len(mined)} mined trade(s)")
    for row in rows:
        if row.status == MINED:
            if row.block_number < oldest_unsettled_block:
                continue
            final = journal.recheck(row, risk)
        elif row.status == DROPPED:
            final = journal.revisit_dropped(row, risk)
        else:
            final = journal.reconcile(row, risk)
        if final is row:  # the same row back: still pending, or a trade still in place
            continue
        if final.status == SENT:  # pending past the timeout: replaced at its nonce (Journal.reconcile)
            report(f"trade {row.trade_id[:12]}… of {row.user_id} pending at nonce {row.nonce} past "
                   f"tx_timeout_seconds: replaced by {final.tx_hash} with higher fees")
        else:
            report(f"reconciled trade {row.trade_id[:12]}… of {row.user_id}: {row.status} -> {final.status}")


def load_compiled(strategies: Mapping[tuple[str, str], Sequence[Strategy]]) -> None:
    """Runs each strategy class once on a short flat series at start: its indicators'
    numba kernels are loaded (from the disk cache, or compiled) then, not in the first
    cycle that decides (0.27 s for the first Bollinger signal in a timing run, 0.2 ms after),
    which may be a wave of trades on one bar."""
    for strategy in {type(s): s for chosen in strategies.values() for s in chosen}.values():
        flat = np.full(strategy.warmup + 2, 1.0)
        flat.flags.writeable = False  # as the cycle's closes are (numba compiles a read-only array apart)
        strategy.signal_now(flat)


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



def warm_up_history(context: KeeperContext, series: Mapping[str, str], backfill: PriceData | None,
                    report: Callable[[str], None]) -> None:
    """Gives every price series (name -> token) the bars its strategies need before the
    first decision: the bars of a ``--backfill`` file first, then the feed's past rounds."""
    store, timeframe = context.store, context.config.settings.timeframe_seconds
    if backfill is not None:
        added = backfill_bars(store, backfill, timeframe)
        report("Backfilled from file: " + ", ".join(f"{name} {count} bars" for name, count in added.items()))
    wanted = max((s.warmup for strategies in context.user_strategies.values() for s in strategies), default=0) + 1
    short = {name: token for name, token in series.items() if len(store.bars(name, timeframe)) < wanted}
    if not short:
        return
    client = context.client
    added = backfill_from_rounds(store, {name: client.feed_source(token) for name, token in short.items()}, wanted,
                                 timeframe, client.block_time())
    for name, token in short.items():
        report(f"Backfilled {name} from {token}'s feed rounds: {added[name]} bars")
