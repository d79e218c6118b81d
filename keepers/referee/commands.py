"""The referee's entry points over a connected chain: what `ape run keeper verify` and
`rebuild --from-chain` (and the replay's report) call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ape import chain
from ape_ethereum.multicall import Call
from ape_ethereum.multicall.constants import MULTICALL3_ADDRESS

from keepers.base.errors import SentinelError
from keepers.chain.deployment import DeploymentRecord, is_live
from keepers.engine.startup import user_address, user_strategies
from keepers.persistence.store import Store
from keepers.referee.chain_log import block_times, deployment_block
from keepers.referee.history import ChainHistory
from keepers.referee.rebuild import RebuildResult, rebuild, require_empty
from keepers.referee.verify import VerifyResult, verify
from keepers.settings.keeper import KeeperConfig, UserConfig
from keepers.settings.network import NetworkSpec


def read_history(config: KeeperConfig, spec: NetworkSpec, record: DeploymentRecord, *, local_chain: bool,
                 history_from: datetime | None, to_block: int | None) -> tuple[ChainHistory, int]:
    """The deployment's public history up to ``to_block`` (default: the head); returns it
    and the last block read. SentinelError when the record is not this chain's."""
    if not is_live(record, chain.provider):
        raise SentinelError(f"deployment record of {record.network} does not match this chain; "
                            "give the --deployments folder of the deployment on this node")
    if local_chain and not chain.provider.get_code(MULTICALL3_ADDRESS):
        Call.inject()  # anvil has no Multicall3; place it where mainnet has it
    head = chain.blocks.head.number
    last = head if to_block is None else to_block
    if last > head:
        raise SentinelError(f"--to-block: {last} is past the chain's head {head}")
    timeframe = config.settings.timeframe_seconds
    start = first_keeper_bar(record, timeframe) if history_from is None else int(history_from.timestamp())
    if start % timeframe:
        raise SentinelError(f"--history-from: {history_from:%Y-%m-%d %H:%M} is not a bar start "
                            f"(a multiple of timeframe_seconds {timeframe} since 1970)")
    return ChainHistory.read(record, spec, chain.chain_id, timeframe, start, last), last


def first_keeper_bar(record: DeploymentRecord, timeframe: int) -> int:
    """The default start of the keepers' bars: the bar after the one the Executor was
    deployed in (a keeper started on an empty store, as the replay's, has its first bar
    there; one whose store began elsewhere is verified with --history-from)."""
    deployed = deployment_block(record)
    deployed_at = block_times([deployed])[deployed]
    return deployed_at - deployed_at % timeframe + timeframe


def verify_trades(config: KeeperConfig, users: Sequence[UserConfig], spec: NetworkSpec, record: DeploymentRecord, *,
                  local_chain: bool, every_user: bool, from_block: int | None = None, to_block: int | None = None,
                  history_from: datetime | None = None) -> VerifyResult:
    """The verdicts of ``users``' trades in [from_block (default: the Executor's
    deployment), to_block (default: the head)], read from the chain alone."""
    history, last = read_history(config, spec, record, local_chain=local_chain, history_from=history_from,
                                 to_block=to_block)
    first = deployment_block(record) if from_block is None else from_block
    addresses = {user.id: user_address(user, local_chain) for user in users}
    return verify(history, users, addresses, user_strategies(config, tuple(users)), first, last, every_user)


def rebuild_store(config: KeeperConfig, store: Store, spec: NetworkSpec, record: DeploymentRecord, *,
                  local_chain: bool, history_from: datetime | None = None) -> RebuildResult:
    """Fills the empty ``store`` with what the chain holds of every user of the users file."""
    require_empty(store)
    history, _ = read_history(config, spec, record, local_chain=local_chain, history_from=history_from,
                              to_block=None)
    users = config.users
    addresses = {user.id: user_address(user, local_chain) for user in users}
    series = {token: name for token, name in config.settings.price_series.items() if token in record.tokens}
    return rebuild(store, history, users, addresses, user_strategies(config, users), series)
