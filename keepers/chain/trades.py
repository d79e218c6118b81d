"""Sizes, sends and reconciles one keeper trade through the Executor.

The keeper never trusts itself with the price: the Executor's oracle floor is the
least it may accept, and the pool's own quote (less a small tolerance) tightens it.
A trade the pool cannot fill above the floor is refused before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from ape import chain
from ape.api import AccountAPI, ReceiptAPI
from ape.exceptions import ContractLogicError
from ape_ethereum.multicall.constants import MULTICALL3_ADDRESS
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from keepers.base.errors import SentinelError
from keepers.chain.client import MulticallBatch
from keepers.chain.event_logs import address_topic, event_topic, receipt_events
from keepers.chain.uniswap import uniswap_v2_container
from strategies.exits import EXIT_STRATEGY, ExitTrigger

MAX_BPS = 10_000
_ORACLE_FLOOR = function_signature_to_4byte_selector("oracleFloor(address,address,address,uint256)")
_AMOUNTS_OUT = function_signature_to_4byte_selector("getAmountsOut(uint256,address[])")
_BLOCK_TIME = function_signature_to_4byte_selector("getCurrentBlockTimestamp()")


class TradeRejected(SentinelError):
    """The trade would fail its on-chain checks; nothing was sent."""


@dataclass(frozen=True)
class TradePlan:
    """Everything `executeTrade` is called with, and why ``min_amount_out`` is what it is."""

    user: str
    token_in: str
    token_out: str
    amount_in: int
    pool_amount_out: int
    oracle_floor: int
    min_amount_out: int
    router: str
    deadline: int
    trade_id: bytes


@dataclass(frozen=True)
class TradeResult:
    """What the chain says happened (from the TradeExecuted event)."""

    trade_id: bytes
    tx_hash: str
    block_number: int
    amount_in: int
    amount_out: int
    price_in: int
    price_out: int
    round_in: int
    round_out: int
    gas_used: int


def make_trade_id(user: str, token_in: str, token_out: str, amount_in: int, nonce: str) -> bytes:
    """A deterministic idempotency key: the same intent and nonce give the same id."""
    return keccak(f"{user.lower()}|{token_in.lower()}|{token_out.lower()}|{amount_in}|{nonce}".encode())


def decision_trade_id(
    chain_id: int, executor: str, user: str, token_in: str, token_out: str, strategy: str, bar_time: int
) -> bytes:
    """The idempotency key of a keeper's decision: one strategy's call on one closed bar
    for one user and pair can never execute twice, whatever the keeper process does."""
    return keccak(encode(
        ["uint256", "address", "address", "address", "address", "string", "uint256"],
        [chain_id, to_checksum_address(executor), to_checksum_address(user), to_checksum_address(token_in),
         to_checksum_address(token_out), strategy, bar_time],
    ))


def exit_trade_id(chain_id: int, executor: str, user: str, token: str, quote: str, started_at: int) -> bytes:
    """The idempotency key of a protective exit: one per protection start (``startedAt``,
    the block time of the user's ``setProtection`` or of the keeper BUY that restarted it),
    since an exit spends its protection until the next start. Derived from public data, so
    the referee's rebuild finds the same key for any caller's exit."""
    return decision_trade_id(chain_id, executor, user, token, quote, EXIT_STRATEGY, started_at)


def plan_trade(
    executor,
    router_address: str,
    user: str,
    token_in: str,
    token_out: str,
    amount_in: int,
    trade_id: bytes,
    *,
    tolerance_bps: int = 50,
    deadline_seconds: int = 300,
) -> TradePlan:
    """Reads the oracle floor, the pool quote and the block time (one Multicall3 call) and
    derives ``min_amount_out``."""
    if amount_in <= 0:
        raise SentinelError("amount: must be above zero")
    if not 0 <= tolerance_bps < MAX_BPS:
        raise SentinelError(f"tolerance_bps: {tolerance_bps} must be in [0, {MAX_BPS})")
    path = [to_checksum_address(token_in), to_checksum_address(token_out)]
    floor_data, quote_data, time_data = MulticallBatch([
        (executor.address, _ORACLE_FLOOR + encode(["address", "address", "address", "uint256"],
                                                  [to_checksum_address(user), *path, amount_in])),
        (router_address, _AMOUNTS_OUT + encode(["uint256", "address[]"], [amount_in, path])),
        (MULTICALL3_ADDRESS, _BLOCK_TIME),
    ]).returned()
    if floor_data is None or quote_data is None:  # a revert: Ape's own calls decode its reason
        floor, pool_out, block_time = _read_through_ape(executor, router_address, user, token_in, token_out, amount_in)
    else:
        floor = decode(["uint256"], floor_data)[0]
        pool_out = decode(["uint256[]"], quote_data)[0][-1]
        block_time = decode(["uint256"], time_data)[0]
    if pool_out < floor:
        raise TradeRejected(
            f"the pool pays {pool_out} but the oracle floor is {floor}: the pool is off the oracle price "
            "by more than the user's slippage; not trading"
        )
    min_out = max(floor, pool_out * (MAX_BPS - tolerance_bps) // MAX_BPS)
    return TradePlan(
        user=user,
        token_in=token_in,
        token_out=token_out,
        amount_in=amount_in,
        pool_amount_out=pool_out,
        oracle_floor=floor,
        min_amount_out=min_out,
        router=router_address,
        deadline=block_time + deadline_seconds,
        trade_id=trade_id,
    )


def _read_through_ape(executor, router_address: str, user: str, token_in: str, token_out: str,
                      amount_in: int) -> tuple[int, int, int]:
    """``plan_trade``'s reads one by one through Ape, for a read that reverted: Ape decodes
    the revert (a failed oracle check is a TradeRejected with its reason)."""
    try:
        floor = executor.oracleFloor(user, token_in, token_out, amount_in)
    except ContractLogicError as error:
        raise TradeRejected(f"oracle check failed: {error.message}") from None
    router = uniswap_v2_container("UniswapV2Router02").at(router_address)
    pool_out = router.getAmountsOut(amount_in, [token_in, token_out])[-1]
    return floor, pool_out, chain.blocks.head.timestamp


def send_trade(executor, keeper: AccountAPI, plan: TradePlan) -> TradeResult:
    """Sends the planned trade, waits for it, and reads the outcome from its event."""
    if executor.isTradeIdUsed(plan.trade_id):
        raise TradeRejected(f"trade id 0x{plan.trade_id.hex()} has already executed; not sending it again")
    try:
        receipt = executor.executeTrade(
            plan.user, plan.token_in, plan.token_out, plan.amount_in, plan.min_amount_out,
            plan.router, plan.deadline, plan.trade_id, sender=keeper,
        )
    except ContractLogicError as error:
        raise TradeRejected(f"executeTrade reverted: {error.message}") from None
    return trade_result(executor, receipt, plan.trade_id)


def trade_result(executor, receipt: ReceiptAPI, trade_id: bytes) -> TradeResult:
    """The outcome of ``trade_id`` read from its TradeExecuted event in ``receipt``."""
    event = next(receipt_events(receipt, executor.address, executor.TradeExecuted.abi, "0x" + trade_id.hex()), None)
    if event is None:
        raise SentinelError(f"transaction {receipt.txn_hash} has no TradeExecuted event for trade 0x{trade_id.hex()}")
    return TradeResult(
        trade_id=trade_id,
        tx_hash=str(receipt.txn_hash),
        block_number=receipt.block_number,
        amount_in=event["amountIn"],
        amount_out=event["amountOut"],
        price_in=event["priceIn"],
        price_out=event["priceOut"],
        round_in=event["roundIn"],
        round_out=event["roundOut"],
        gas_used=receipt.gas_used,
    )


@dataclass(frozen=True)
class ExitResult:
    """What the chain says a protective exit did (from the ExitExecuted event)."""

    caller: str
    trigger: ExitTrigger
    amount_in: int
    amount_out: int  # what the user received: the swap's output less the bounty
    bounty: int
    price: int  # USD, 18 decimals
    round_id: int
    high_round_id: int


def exit_result(executor, receipt: ReceiptAPI, user: str, token: str) -> ExitResult:
    """The outcome of ``user``'s exit of ``token`` read from its ExitExecuted event in ``receipt``."""
    event = next(receipt_events(receipt, executor.address, executor.ExitExecuted.abi, address_topic(user),
                                address_topic(token)), None)
    if event is None:
        raise SentinelError(f"transaction {receipt.txn_hash} has no ExitExecuted event for {user} and {token}")
    return ExitResult(caller=event["caller"], trigger=ExitTrigger(event["trigger"]), amount_in=event["amountIn"],
                      amount_out=event["amountOut"] - event["bounty"], bounty=event["bounty"],
                      price=event["priceUsd"], round_id=event["roundId"], high_round_id=event["highRoundId"])


def find_trade_receipt(executor, trade_id: bytes, from_block: int) -> ReceiptAPI | None:
    """The receipt of the transaction that executed ``trade_id`` (by its indexed event
    topic), or None if no such event exists from ``from_block`` on."""
    topic = event_topic(executor.TradeExecuted.abi)
    logs = chain.provider.web3.eth.get_logs({
        "address": executor.address, "fromBlock": from_block, "toBlock": "latest",
        "topics": [topic, "0x" + trade_id.hex()],
    })
    if not logs:
        return None
    return chain.provider.get_receipt("0x" + bytes(logs[0]["transactionHash"]).hex())
