"""The local market's driver: one transaction per replay bar moves every feed and pool.

``MockMarketDriver`` (a test double) pushes a round to every token's MockV3Aggregator
and arbitrages every Uniswap V2 pool to the new oracle price in one call, so a replay
pays one transaction per bar, not one per feed and pool. Anvil's clock is set before
that transaction, so the feeds' ``updatedAt`` is the bar's time and staleness checks
stay real. Local chains and forks only: on a public network the feeds are Chainlink's.

A move is sent as a bare ``eth_sendTransaction`` from a test account (anvil signs it and
picks nonce and fees) with a gas limit fixed once. Measured on a plain anvil, 3 tokens +
quote, median of 50: this path 11 ms; a signed raw transaction through web3 34 ms
(signing in Python); an Ape transaction 85 ms (gas estimate, fee queries, signing,
receipt decoding) - most of a replay's 100 ms budget per bar.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from ape import chain, project
from ape.api import AccountAPI
from ape.contracts import ContractInstance
from ape.exceptions import ApeException

from keepers.base.errors import SentinelError
from keepers.chain.deployment import DeploymentRecord, save_record
from keepers.chain.onchain import require_local_chain
from keepers.deploy.deployer import deployed_contract

CONTRACT_NAME = "MockMarketDriver"
# Gas of a move, bounded once instead of estimated per bar (an estimate costs about as
# much as the move): the quote feed's round (~80k) plus, per market, its round, a mint
# and a swap (up to ~180k measured, when storage slots are new); at least twice that.
MOVE_GAS_BASE = 150_000
MOVE_GAS_PER_MARKET = 400_000
RECEIPT_POLL_SECONDS = 0.002
RECEIPT_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class MoveReceipt:
    """Where a move was mined and what it cost."""

    tx_hash: str
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class MarketDriver:
    """A deployed driver and the account that sends its moves."""

    contract: ContractInstance
    sender: str  # a test account: anvil signs its moves
    feed_decimals: dict[str, int]  # symbol -> feed decimals, in the order `move` takes answers

    @property
    def gas_limit(self) -> int:
        """The gas every move is sent with."""
        return MOVE_GAS_BASE + MOVE_GAS_PER_MARKET * (len(self.feed_decimals) - 1)

    @classmethod
    def from_record(cls, record: DeploymentRecord, sender: AccountAPI) -> MarketDriver:
        """The driver ``deploy_market_driver`` recorded; SentinelError if there is none."""
        require_local_chain("the market driver")
        contract = project.MockMarketDriver.at(record.address_of(CONTRACT_NAME))
        symbol_of = {address.lower(): symbol for symbol, address in record.tokens.items()}
        feed_decimals = {symbol_of[contract.QUOTE().lower()]: contract.QUOTE_FEED_DECIMALS()}
        for market in contract.markets():
            feed_decimals[symbol_of[market.token.lower()]] = market.feedDecimals
        return cls(contract=contract, sender=sender.address, feed_decimals=feed_decimals)

    def answers(self, prices_usd: Mapping[str, Decimal | float]) -> list[int]:
        """Each feed's answer for ``prices_usd``, rounded to the feed's decimals, in the
        order ``move`` takes them; SentinelError unless every symbol has a positive price."""
        if set(prices_usd) != set(self.feed_decimals):
            raise SentinelError(
                f"market move: prices for {sorted(prices_usd)}; the driver moves exactly {sorted(self.feed_decimals)}"
            )
        answers = []
        for symbol, decimals in self.feed_decimals.items():
            price = Decimal(str(prices_usd[symbol]))
            answer = int(price.scaleb(decimals).to_integral_value(ROUND_HALF_EVEN)) if price.is_finite() else 0
            if answer <= 0:
                raise SentinelError(f"market move: {symbol} price {prices_usd[symbol]!r} is not a positive USD price")
            answers.append(answer)
        return answers

    @staticmethod
    @contextlib.contextmanager
    def block_times_pinned(seconds_per_block: int = 1) -> Iterator[None]:
        """Every block mined meanwhile is stamped ``seconds_per_block`` after the one before
        (after a move, after the move's bar time), not with the wall clock: the chain time a
        keeper sees no longer depends on how fast the machine ran, so a replay is
        reproducible. anvil's own ``anvil_setBlockTimestampInterval``; removed on exit."""
        chain.provider.make_request("anvil_setBlockTimestampInterval", [seconds_per_block])
        try:
            yield
        finally:
            chain.provider.make_request("anvil_removeBlockTimestampInterval", [])

    def move(self, prices_usd: Mapping[str, Decimal | float], *, at_time: int | None = None) -> MoveReceipt:
        """One transaction: every feed answers ``prices_usd`` and every pool trades to it.

        With ``at_time`` the transaction is mined at that block time (the bar's time),
        which becomes every feed's ``updatedAt``. SentinelError if it fails.
        """
        data = self.contract.move.encode_input(self.answers(prices_usd))
        if at_time is not None:
            chain.provider.set_timestamp(at_time)
        transaction = {
            "from": self.sender, "to": self.contract.address, "gas": hex(self.gas_limit), "data": data.to_0x_hex()
        }
        try:
            tx_hash = chain.provider.make_request("eth_sendTransaction", [transaction])
        except ApeException as error:
            raise SentinelError(f"market move from {self.sender} was refused: {error}") from None
        receipt = _wait_for_receipt(tx_hash)
        if int(receipt["status"], 16) != 1:
            raise SentinelError(f"market move {tx_hash} reverted (gas used {int(receipt['gasUsed'], 16)})")
        return MoveReceipt(
            tx_hash=tx_hash, block_number=int(receipt["blockNumber"], 16), gas_used=int(receipt["gasUsed"], 16)
        )


def deploy_market_driver(
    record: DeploymentRecord, quote: str, deployer: AccountAPI, record_file: Path
) -> MarketDriver:
    """Deploys a driver over the recorded local market (every token priced against
    ``quote`` in the factory's pairs) and writes its address into the record as
    ``MockMarketDriver``."""
    require_local_chain("the market driver")
    if quote not in record.tokens:
        raise SentinelError(f"market driver: quote token {quote} is not in the deployment record")
    symbols = [symbol for symbol in record.tokens if symbol != quote]
    contract = deployer.deploy(
        project.MockMarketDriver,
        record.address_of("UniswapV2Factory"),
        record.tokens[quote],
        record.feeds[quote],
        [record.tokens[symbol] for symbol in symbols],
        [record.feeds[symbol] for symbol in symbols],
    )
    record.contracts[CONTRACT_NAME] = deployed_contract(contract)
    save_record(record, record_file)
    return MarketDriver.from_record(record, deployer)


def market_driver_for(record: DeploymentRecord, quote: str, deployer: AccountAPI, record_file: Path) -> MarketDriver:
    """The recorded driver, or a new one deployed and recorded (`simulate`, `cluster`)."""
    if CONTRACT_NAME in record.contracts:
        return MarketDriver.from_record(record, deployer)
    return deploy_market_driver(record, quote, deployer, record_file)


def advance_time(seconds: int) -> int:
    """Sets the next block's time to the latest block's plus ``seconds`` and returns it.

    Nothing is mined: the next transaction (a ``move``) carries that time.
    """
    timestamp = chain.blocks.head.timestamp + seconds
    chain.provider.set_timestamp(timestamp)
    return timestamp


def _wait_for_receipt(tx_hash: str) -> dict:
    # Anvil mines at once, but may answer eth_sendTransaction before the block is sealed.
    deadline = time.monotonic() + RECEIPT_TIMEOUT_SECONDS
    while (receipt := chain.provider.make_request("eth_getTransactionReceipt", [tx_hash])) is None:
        if time.monotonic() > deadline:
            raise SentinelError(f"market move {tx_hash} not mined after {RECEIPT_TIMEOUT_SECONDS} s: is anvil mining?")
        time.sleep(RECEIPT_POLL_SECONDS)
    return receipt
