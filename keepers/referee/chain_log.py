"""A deployment's public history as the referee reads it: every event of the Executor and
the Vault from the Executor's deployment block on (one ``eth_getLogs`` per contract), the
block time of each, and historical reads batched through Multicall3.

Events are decoded with Ape's ecosystem decoder against the contracts' own ABIs and
ordered by (block, log index): the order the chain applied them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ape import chain, project

from keepers.base.errors import SentinelError
from keepers.base.retry import with_retries
from keepers.chain.client import MulticallBatch
from keepers.chain.deployment import DeploymentRecord

MULTICALL_BATCH = 500  # calls per eth_call: well under a node's gas cap for view calls
RPC_BATCH = 100  # requests per JSON-RPC batch: what public node providers accept


@dataclass(frozen=True)
class ChainEvent:
    """One decoded event, where the chain put it."""

    contract: str  # "Executor" or "Vault"
    name: str
    args: dict
    block_number: int
    log_index: int
    tx_hash: str

    @property
    def order(self) -> tuple[int, int]:
        """Where it sits in the chain's order."""
        return self.block_number, self.log_index


def _rpc(method: str, params: list):
    response = with_retries(lambda: chain.provider.web3.provider.make_request(method, params))
    if "error" in response:
        raise SentinelError(f"{method} failed: {response['error'].get('message', response['error'])}")
    return response["result"]


def deployment_block(record: DeploymentRecord) -> int:
    """The block the Executor was deployed in (where its history starts)."""
    return record.contracts["Executor"].block_number or 0


def read_events(record: DeploymentRecord, from_block: int, to_block: int) -> list[ChainEvent]:
    """Every Executor and Vault event in [from_block, to_block], in the chain's order."""
    events = []
    for name, container in (("Executor", project.Executor), ("Vault", project.Vault)):
        address = record.address_of(name)
        logs = _rpc("eth_getLogs", [{"address": address, "fromBlock": hex(from_block), "toBlock": hex(to_block)}])
        abis = list(container.contract_type.events)
        for log in chain.provider.network.ecosystem.decode_logs(logs, *abis):
            events.append(ChainEvent(contract=name, name=log.event_name, args=dict(log.event_arguments),
                                     block_number=log.block_number, log_index=log.log_index,
                                     tx_hash=str(log.transaction_hash)))
    return sorted(events, key=lambda event: event.order)


def batch_request(requests: Sequence[tuple[str, list]]) -> list:
    """Each (method, params)'s result, sent as JSON-RPC batches of RPC_BATCH requests;
    SentinelError naming the method when one fails."""
    results = []
    for start in range(0, len(requests), RPC_BATCH):
        chunk = requests[start:start + RPC_BATCH]
        answers = with_retries(lambda chunk=chunk: chain.provider.web3.provider.make_batch_request(list(chunk)))
        if not isinstance(answers, list):
            raise SentinelError(f"{chunk[0][0]}: the node refused a batch of {len(chunk)} requests")
        for (method, params), answer in zip(chunk, answers, strict=True):
            if "error" in answer or answer.get("result") is None:
                raise SentinelError(f"{method} {params[0]} failed: {answer.get('error', 'no result')}")
            results.append(answer["result"])
    return results


def block_times(numbers: Iterable[int]) -> dict[int, int]:
    """Block number -> its timestamp, read in JSON-RPC batches."""
    wanted = sorted(set(numbers))
    blocks = batch_request([("eth_getBlockByNumber", [hex(number), False]) for number in wanted])
    return {number: int(block["timestamp"], 16) for number, block in zip(wanted, blocks, strict=True)}


def multicall(calls: Sequence[tuple[str, bytes]], block: int | str = "latest") -> list[bytes | None]:
    """Each (target, calldata)'s return data at ``block`` (None where it reverted),
    through Multicall3 in batches of MULTICALL_BATCH calls: one eth_call per batch."""
    return [data for start in range(0, len(calls), MULTICALL_BATCH)
            for data in MulticallBatch(calls[start:start + MULTICALL_BATCH]).returned(block)]
