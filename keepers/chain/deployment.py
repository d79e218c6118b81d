"""The deployment record: data/deployments/<ecosystem>-<network>.json.

It lists every contract `deploy` created or adopted, with the chain id, block number,
block hash and transaction hash, so later scripts (and the keepers) find them, and so a
re-run can tell whether the chain still holds them (an anvil restart reuses addresses
but not block hashes).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ape.exceptions import BlockNotFoundError

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError

DEPLOYMENTS_DIR = PROJECT_ROOT / "data" / "deployments"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class DeployedContract:
    """Where one contract lives and how it got there (tx fields empty when adopted)."""

    address: str
    block_number: int | None = None
    block_hash: str | None = None
    tx_hash: str | None = None


@dataclass
class DeploymentRecord:
    """Every address of one deployment on one chain."""

    ecosystem: str
    network: str
    chain_id: int
    contracts: dict[str, DeployedContract] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # symbol -> token address
    feeds: dict[str, str] = field(default_factory=dict)  # symbol -> feed address
    roles: dict[str, str] = field(default_factory=dict)  # owner, guardian
    keepers: list[str] = field(default_factory=list)  # keeper accounts allowed by deploy

    def address_of(self, name: str) -> str:
        """The address of contract ``name``; SentinelError if the record lacks it."""
        if name not in self.contracts:
            raise SentinelError(f"deployment has no {name}: run `ape run deploy` on this network first")
        return self.contracts[name].address

    def to_json(self) -> dict[str, Any]:
        """The JSON document written to disk."""
        return {"format_version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> DeploymentRecord:
        """Parses a document written by ``to_json``."""
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format_version must be {FORMAT_VERSION}")
        contracts = {name: DeployedContract(**entry) for name, entry in document["contracts"].items()}
        return cls(
            ecosystem=document["ecosystem"],
            network=document["network"],
            chain_id=int(document["chain_id"]),
            contracts=contracts,
            tokens=dict(document.get("tokens", {})),
            feeds=dict(document.get("feeds", {})),
            roles=dict(document.get("roles", {})),
            keepers=list(document.get("keepers", [])),
        )


class ChainReader(Protocol):
    """What ``is_live`` needs from a provider (Ape's provider satisfies it)."""

    chain_id: int

    def get_code(self, address: str) -> bytes: ...

    def get_block(self, block_id: int) -> Any: ...


def record_path(ecosystem: str, network: str, directory: Path | None = None) -> Path:
    """data/deployments/<ecosystem>-<network>.json."""
    return (directory or DEPLOYMENTS_DIR) / f"{ecosystem}-{network}.json"


def load_record(path: Path) -> DeploymentRecord | None:
    """The record at ``path``, None if there is none; SentinelError if it is damaged."""
    if not path.is_file():
        return None
    try:
        return DeploymentRecord.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise SentinelError(f"{path} is damaged ({error}); move it away and deploy with --fresh") from None


def save_record(record: DeploymentRecord, path: Path) -> None:
    """Writes atomically: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        json.dump(record.to_json(), stream, indent=2, sort_keys=True)
        stream.write("\n")
    os.replace(temporary, path)


def is_live(record: DeploymentRecord, provider: ChainReader) -> bool:
    """True when this chain still holds every contract of ``record``.

    Same chain id, code at every address, and the recorded block hashes unchanged:
    a restarted anvil has the same chain id and may reuse addresses, but its blocks
    differ.
    """
    if record.chain_id != provider.chain_id:
        return False
    for entry in record.contracts.values():
        if not provider.get_code(entry.address):
            return False
        if entry.block_number is not None:
            try:
                block = provider.get_block(entry.block_number)
            except BlockNotFoundError:  # beyond this chain's head: not our chain
                return False
            if block.hash is None or block.hash.hex().removeprefix("0x") != (entry.block_hash or "").removeprefix("0x"):
                return False
    return True
