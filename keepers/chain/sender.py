"""Signs, sends and sees through one keeper account's transactions.

The hash of a signed transaction is known before it is broadcast, so the caller can
store it first (write-ahead): whatever happens after, the next start finds the
transaction by that hash. The sender keeps its own nonce count (one per keeper
account and process), moves it up to the chain's before each transaction (the account
may have sent from elsewhere), re-reads it when the node says it is wrong, and
replaces a transaction still pending after a timeout by one with the same nonce and
higher fees, so exactly one of them can be mined.

Several transactions of the account may be pending at once: each ``sign`` takes the
next nonce of the one counter, and ``wait_all`` waits for many together. A nonce the
node lost while later ones wait (a gap: the node holds them back) is filled by
``cancel``: a 0-value transfer to the account itself at that nonce. A transaction another
process of the account signed (a keeper that crashed) is ``adopt``ed from the node's copy
to be replaced.

A trade is signed from one JSON-RPC batch (the chain's pending nonce count, the gas
estimate, the priority fee and the base fee: one round trip) and a transaction built
directly, not through Ape's ``as_transaction`` path, which asks the node for each of
these (and the chain id, the sender's balance, the contract's code) one request at a
time: in a wave of trades on one bar those requests were most of the keeper's time
per trade (bench/wave.py). Each version is serialized (and its signature checked)
once: its bytes and hash are kept with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ape import chain
from ape.api import AccountAPI, ReceiptAPI, TransactionAPI
from ape.exceptions import ContractLogicError, TransactionNotFoundError
from eth_utils import keccak
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound, Web3RPCError

from keepers.base.errors import SentinelError
from keepers.base.retry import with_retries
from keepers.chain.client import concrete_provider

# Nodes accept a replacement only with at least 10% higher fees; 25% is a clear margin.
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 5, 4
MAX_REPLACEMENTS = 3
# The gas limit a trade is signed with: its estimate plus a margin (the state it runs on can
# change before its block: an earlier trade of the same block moves the pool). Not Ape's
# local default, the block's whole gas limit, which fits one transaction per block.
GAS_MARGIN_PERCENT = 130


class PreflightReverted(SentinelError):
    """The transaction would revert (gas estimation failed); nothing was sent."""


@dataclass
class SentTransaction:
    """A signed transaction (its newest version, serialized once: ``raw``, ``tx_hash``)
    and the hashes of every version of it that was broadcast."""

    signed: TransactionAPI
    nonce: int
    hashes: list[str] = field(default_factory=list)
    raw: bytes = field(init=False, repr=False)
    tx_hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.sign_as(self.signed)

    def sign_as(self, signed: TransactionAPI) -> None:
        """Makes ``signed`` (a replacement at the same nonce) the newest version."""
        # Ape's serialization recovers the signer from the signature (a check worth making
        # once a version, not at every use of its bytes or hash).
        self.signed, self.raw = signed, bytes(signed.serialize_transaction())
        self.tx_hash = _hex(keccak(self.raw))


class TransactionSender:
    """Sends one account's transactions; not shared between processes."""

    def __init__(self, account: AccountAPI, *, timeout_seconds: float, poll_seconds: float = 0.2) -> None:
        self.account = account
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self._next_nonce: int | None = None
        self._chain_id: int | None = None
        self._base_fee_multiplier: float | None = None

    def sign(self, method, *args) -> SentTransaction:
        """Signs ``method(*args)`` at this account's next nonce; PreflightReverted if it
        would revert (the gas estimate runs the call), with the decoded reason."""
        target, calldata = method.contract.address, HexBytes(method.encode_input(*args))
        call = {"from": self.account.address, "to": target, "data": calldata.to_0x_hex()}
        pending_count, estimate, priority_fee, fee_history = _batch([
            ("eth_getTransactionCount", [self.account.address, "pending"]),
            # Against the newest block, as plan_trade read the pool (and geth's default): a
            # node that estimates on its pending block runs every pooled transaction first.
            ("eth_estimateGas", [call, "latest"]),
            ("eth_maxPriorityFeePerGas", []),
            ("eth_feeHistory", [1, "latest", []]),  # its last base fee is the next block's
        ])
        nonce = self._nonce(_int(_result(pending_count)))
        if "error" in estimate:  # would revert: Ape's own estimate decodes the reason
            try:
                gas = chain.provider.estimate_gas_cost(method.as_transaction(*args, sender=self.account, nonce=nonce))
            except ContractLogicError as error:
                raise PreflightReverted(error.message or "reverted without a reason") from None
        else:
            gas = _int(estimate["result"])
        priority = _int(_result(priority_fee))
        # The fee cap as Ape's own transactions set it: the next base fee times the network's multiplier, plus the tip.
        base_fee = _int(_result(fee_history)["baseFeePerGas"][-1])
        txn = chain.provider.network.ecosystem.create_transaction(
            sender=self.account.address, receiver=target, data=calldata, value=0, nonce=nonce,
            gas_limit=gas * GAS_MARGIN_PERCENT // 100, chain_id=self.chain_id, type=2, max_priority_fee=priority,
            max_fee=int(base_fee * self.base_fee_multiplier + priority))
        signed = self.account.sign_transaction(txn)
        if signed is None:
            raise SentinelError(
                f"keeper_account: {self.account.address} did not sign; unlock it (see docs/operating.md)")
        return SentTransaction(signed=signed, nonce=nonce)

    @property
    def chain_id(self) -> int:
        """The connected chain's id (asked once: it never changes under a keeper)."""
        if self._chain_id is None:
            self._chain_id = chain.chain_id
        return self._chain_id

    @property
    def base_fee_multiplier(self) -> float:
        """The network's fee cap multiplier from Ape's config (read once: each read looks it up anew)."""
        if self._base_fee_multiplier is None:
            self._base_fee_multiplier = chain.provider.network.base_fee_multiplier
        return self._base_fee_multiplier

    def broadcast(self, sent: SentTransaction) -> None:
        """Broadcasts the newest version; the nonce is used from here on."""
        web3 = chain.provider.web3
        try:
            web3.eth.send_raw_transaction(sent.raw)
        except (ValueError, Web3RPCError) as error:  # web3 7 raises Web3RPCError, earlier ones ValueError
            message = str(error).lower()
            if "already known" in message:
                pass  # the node has it (a retry of a broadcast that did arrive)
            elif "nonce too low" in message or "nonce too high" in message:
                self._next_nonce = None  # re-read from the chain before the next transaction
                raise SentinelError(f"nonce {sent.nonce} was refused ({message}); the nonce is re-read") from None
            else:
                raise
        sent.hashes.append(sent.tx_hash)
        # max: a replacement of an older nonce (several pending) must not move the count back.
        self._next_nonce = max(self._next_nonce or 0, sent.nonce + 1)

    def wait_all(self, sents: Sequence[SentTransaction],
                 on_replace: Callable[[SentTransaction], None]) -> dict[int, ReceiptAPI]:
        """Nonce -> the receipt of whichever version of each transaction is mined; the
        ones still pending after the timeout are replaced (``on_replace`` stores each new
        hash before it is broadcast), up to MAX_REPLACEMENTS times. A nonce missing from
        the answer is still pending: reconcile settles it later.

        A replacement at the lowest nonce is what unblocks a gap (the node lost that
        transaction and holds the later ones back); the later ones are replaced too, so
        fees too low for the block are raised for all of them."""
        waiting = sorted(sents, key=lambda sent: sent.nonce)
        receipts: dict[int, ReceiptAPI] = {}
        for replacement in range(MAX_REPLACEMENTS + 1):
            waiting = self._poll_all(waiting, receipts, self.timeout_seconds)
            if waiting:  # a nonce taken by another transaction (none of ours mined at it) never comes
                used = self.mined_nonce_count()
                waiting = self._poll_all([sent for sent in waiting if sent.nonce >= used], receipts, 0)
            if not waiting or replacement == MAX_REPLACEMENTS:
                break
            for sent in waiting:
                self.replace(sent, on_replace)
        return receipts

    def replace(self, sent: SentTransaction, on_replace: Callable[[SentTransaction], None]) -> None:
        """Makes ``sent`` a version at its nonce with higher fees (``_bumped``); ``on_replace``
        stores its hash (write-ahead), then it is broadcast. Exactly one version can be mined."""
        sent.sign_as(self._bumped(sent.signed))
        on_replace(sent)
        try:
            self.broadcast(sent)
        except SentinelError:
            pass  # an earlier version was mined meanwhile (nonce too low): its receipt is found next

    def adopt(self, tx_hash: str) -> SentTransaction | None:
        """This account's transaction ``tx_hash`` that the node holds pending, rebuilt from the
        node's own copy (to, input, gas, value, nonce, chain id, fees) and signed again, so
        that a process that did not sign it (a keeper started after a crash) can ``replace``
        it; None when the node does not hold it pending, or another account sent it."""
        try:
            txn = with_retries(lambda: chain.provider.web3.eth.get_transaction(HexBytes(tx_hash)))
        except TransactionNotFound:
            return None
        if txn.get("blockNumber") is not None or txn["from"].lower() != self.account.address.lower():
            return None
        fees = {"type": 2, "max_fee": txn["maxFeePerGas"], "max_priority_fee": txn["maxPriorityFeePerGas"]} \
            if "maxFeePerGas" in txn else {"type": 0, "gas_price": txn["gasPrice"]}
        rebuilt = chain.provider.network.ecosystem.create_transaction(
            sender=self.account.address, receiver=txn["to"], data=HexBytes(txn["input"]), value=txn["value"],
            nonce=txn["nonce"], gas_limit=txn["gas"], chain_id=txn.get("chainId", self.chain_id), **fees)
        signed = self.account.sign_transaction(rebuilt)
        if signed is None:
            raise SentinelError(f"keeper_account: {self.account.address} did not sign transaction {tx_hash} again")
        return SentTransaction(signed=signed, nonce=txn["nonce"], hashes=[tx_hash])

    def cancel(self, nonce: int) -> str:
        """Fills ``nonce`` with a 0-value transfer to the account itself (fees above the
        node's current price), so the transactions after it can be mined; returns its hash.
        For a nonce the node does not hold a transaction at (a gap)."""
        web3 = chain.provider.web3
        gas_price = with_retries(lambda: web3.eth.gas_price)
        txn = chain.provider.network.ecosystem.create_transaction(
            sender=self.account.address, receiver=self.account.address, value=0, nonce=nonce, gas_limit=21_000,
            max_fee=gas_price * 2, max_priority_fee=max(gas_price // 10, 1), chain_id=chain.chain_id, type=2)
        signed = self.account.sign_transaction(txn)
        if signed is None:
            raise SentinelError(f"keeper_account: {self.account.address} did not sign the cancel at nonce {nonce}")
        cancel = SentTransaction(signed=signed, nonce=nonce)
        self.broadcast(cancel)
        return cancel.tx_hash

    def mined_nonce_count(self) -> int:
        """How many of the account's nonces the chain has used (its mined transactions)."""
        return with_retries(lambda: chain.provider.web3.eth.get_transaction_count(self.account.address))

    def pending_nonces(self, hashes: Sequence[str]) -> set[int]:
        """The nonces of the transactions among ``hashes`` that this account sent and
        the node holds unmined."""
        nonces = set()
        for tx_hash in hashes:
            try:
                txn = with_retries(lambda tx_hash=tx_hash: chain.provider.web3.eth.get_transaction(HexBytes(tx_hash)))
            except TransactionNotFound:
                continue
            if txn.get("blockNumber") is None and txn["from"].lower() == self.account.address.lower():
                nonces.add(txn["nonce"])
        return nonces

    def _nonce(self, on_chain: int) -> int:
        # The chain's (pending) count is read before every transaction: it is ahead of ours
        # when the account sent from elsewhere (re-synced, not refused), ours is ahead while
        # our own transactions wait in a node that does not count them yet.
        self._next_nonce = max(self._next_nonce or 0, on_chain)
        return self._next_nonce

    def _poll_all(self, waiting: list[SentTransaction], receipts: dict[int, ReceiptAPI],
                  timeout: float) -> list[SentTransaction]:
        """Polls ``waiting`` (in nonce order) until each is mined or ``timeout`` passes
        without one mined (a long batch is not stuck while its nonces mine one after
        another); adds the receipts found; returns the ones still waiting. Asks only up to
        the first one still pending: one account's nonces are mined in order, so the later
        ones are too."""
        deadline = time.monotonic() + timeout
        while True:
            while waiting:
                receipt = next(filter(None, map(find_receipt, waiting[0].hashes)), None)
                if receipt is None:
                    break
                receipts[waiting.pop(0).nonce] = receipt
                deadline = time.monotonic() + timeout
            if not waiting or time.monotonic() >= deadline:
                return waiting
            time.sleep(self.poll_seconds)

    def _bumped(self, signed: TransactionAPI) -> TransactionAPI:
        txn = signed.model_copy(deep=True)
        txn.signature = None
        pending_fees = chain.provider.web3.eth.gas_price
        if getattr(txn, "max_fee", None) is not None:
            txn.max_fee = max(_bump(txn.max_fee), pending_fees * 2)
            txn.max_priority_fee = _bump(txn.max_priority_fee or 0) or 1
        else:
            txn.gas_price = max(_bump(txn.gas_price), pending_fees)
        resigned = self.account.sign_transaction(txn)
        if resigned is None:
            raise SentinelError(f"keeper_account: {self.account.address} did not sign the replacement")
        return resigned


def _batch(requests: list[tuple[str, list]]) -> list[dict]:
    """The node's answers to ``requests`` sent as one JSON-RPC batch (one round trip), in
    their order; each answer is a dict with its ``result`` or ``error``."""
    provider = concrete_provider()
    answers = with_retries(lambda: provider.make_batch_request(requests))
    if not isinstance(answers, list):  # the node refused the batch itself
        raise SentinelError(f"node: a batch of {len(requests)} requests was refused: {answers.get('error', answers)}")
    return answers


def _result(answer: dict):
    if "error" in answer:
        raise SentinelError(f"node: {answer['error'].get('message', answer['error'])}")
    return answer["result"]


def _int(value) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def find_receipt(tx_hash: str) -> ReceiptAPI | None:
    """The receipt of a mined transaction, or None while it is pending or unknown
    (with no timeout Ape asks the node once)."""
    try:
        return with_retries(lambda: chain.provider.get_receipt(tx_hash, timeout=0))
    except TransactionNotFoundError:
        return None


def is_pending(tx_hash: str) -> bool:
    """True when the node knows the transaction but has not mined it."""
    try:
        txn = with_retries(lambda: chain.provider.web3.eth.get_transaction(HexBytes(tx_hash)))
    except TransactionNotFound:
        return False
    return txn.get("blockNumber") is None


def _bump(value: int) -> int:
    return value * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR + 1


def _hex(value) -> str:
    return "0x" + bytes(value).hex()
