"""Per-network token, feed and router configuration (data/networks/<network>.yaml).

A local network's file describes the market `ape run deploy` builds (test tokens with
decimals and starting prices); a public network's file lists the real addresses of the
tokens, their Chainlink feeds and the Uniswap V2 router. Addresses live here, never in
code.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError
from keepers.settings.yaml_files import read_mapping

NETWORKS_DIR = PROJECT_ROOT / "data" / "networks"
MAX_FEED_AGE_SECONDS = 7 * 24 * 3600  # Executor.MAX_FEED_AGE
DAY_SECONDS = 24 * 3600
# The owner's delay before a value-moving change takes effect: users' time to leave.
PUBLIC_ADMIN_DELAY_SECONDS = 2 * DAY_SECONDS  # the default on public networks
MIN_PUBLIC_ADMIN_DELAY_SECONDS = DAY_SECONDS
MAX_ADMIN_DELAY_SECONDS = 30 * DAY_SECONDS


def _checksum(value: str) -> str:
    if not is_hex_address(value):
        raise ValueError(f"{value!r} is not a 20-byte hex address")
    if value != value.lower() and not is_checksum_address(value):
        raise ValueError(f"{value!r} has a wrong EIP-55 checksum; copy the address again")
    return to_checksum_address(value)


Address = Annotated[str, AfterValidator(_checksum)]


def parse_address(value: str, field: str) -> str:
    """``value`` as a checksummed address; SentinelError naming ``field`` if it is not one."""
    try:
        return _checksum(value)
    except ValueError as error:
        raise SentinelError(f"{field}: {error}") from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenSpec(_Strict):
    """One tradable token and its USD price feed."""

    symbol: str = Field(min_length=1, max_length=11, pattern=r"^[A-Za-z0-9.]+$")
    decimals: int = Field(ge=0, le=36)
    feed_description: str = Field(min_length=1)
    max_age_seconds: int = Field(gt=0, le=MAX_FEED_AGE_SECONDS)
    # Answers at or beyond these USD prices are rejected on-chain (0: no bound).
    min_price_usd: Decimal = Field(default=Decimal(0), ge=0)
    max_price_usd: Decimal = Field(default=Decimal(0), ge=0)
    # Public networks: where the token and its feed already live.
    address: Address | None = None
    feed: Address | None = None
    # Local networks: the price the test market starts at.
    price_usd: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _bounds_ordered(self) -> TokenSpec:
        if self.max_price_usd and self.max_price_usd <= self.min_price_usd:
            raise ValueError("max_price_usd must be above min_price_usd (or 0 for no bound)")
        return self


class NetworkSpec(_Strict):
    """Everything `deploy` and `setup_oracles` need to know about one network."""

    kind: str = Field(pattern=r"^(local|public)$")
    # The chain a public network's node must be on; checked before connecting. A local
    # file leaves it out: it builds its market on whatever anvil it is given.
    chain_id: int | None = Field(default=None, gt=0)
    quote: TokenSpec
    tokens: list[TokenSpec] = Field(min_length=1)
    router: Address | None = None
    keeper: Address | None = None
    guardian: Address | None = None
    feed_decimals: int = Field(default=8, ge=0, le=18)
    pool_depth_usd: Decimal = Field(default=Decimal(2_000_000), gt=0)
    # Execution delay of the owner's value-moving powers; public networks: 2 days unless
    # set, at least 1 day. A local chain may use a short one (0: none).
    admin_delay_seconds: int | None = Field(default=None, ge=0, le=MAX_ADMIN_DELAY_SECONDS)

    @model_validator(mode="after")
    def _consistent(self) -> NetworkSpec:
        symbols = [token.symbol for token in self.all_tokens]
        duplicates = sorted({symbol for symbol in symbols if symbols.count(symbol) > 1})
        if duplicates:
            raise ValueError(f"token symbols must be unique; repeated: {', '.join(duplicates)}")
        for token in self.all_tokens:
            if self.kind == "public" and (token.address is None or token.feed is None):
                raise ValueError(f"token {token.symbol}: a public network needs both address and feed")
            if self.kind == "local" and token.price_usd is None:
                raise ValueError(f"token {token.symbol}: a local network needs price_usd (the starting price)")
        if self.kind == "public" and self.admin_delay < MIN_PUBLIC_ADMIN_DELAY_SECONDS:
            raise ValueError(
                f"admin_delay_seconds: a public network needs at least {MIN_PUBLIC_ADMIN_DELAY_SECONDS} s (1 day), "
                "the time users have to leave before a change takes effect"
            )
        if self.kind == "public" and self.router is None:
            raise ValueError("router: a public network needs the Uniswap V2 router address")
        if self.kind == "public" and self.chain_id is None:
            raise ValueError("chain_id: a public network needs its chain id (Sepolia: 11155111)")
        return self

    @property
    def decimals(self) -> dict[str, int]:
        """Symbol -> decimals of every token."""
        return {token.symbol: token.decimals for token in self.all_tokens}

    @property
    def admin_delay(self) -> int:
        """Seconds the owner's value-moving changes wait (2 days on a public network unless set)."""
        if self.admin_delay_seconds is not None:
            return self.admin_delay_seconds
        return PUBLIC_ADMIN_DELAY_SECONDS if self.kind == "public" else 0

    @property
    def all_tokens(self) -> list[TokenSpec]:
        """The quote token first, then the traded tokens."""
        return [self.quote, *self.tokens]

    def token(self, symbol: str) -> TokenSpec:
        """The token with ``symbol``; SentinelError naming the choices if none."""
        for token in self.all_tokens:
            if token.symbol == symbol:
                return token
        raise SentinelError(f"unknown token {symbol!r}; configured: {', '.join(t.symbol for t in self.all_tokens)}")


def spec_path_for(network_name: str) -> Path:
    """data/networks/<name>.yaml; a fork (`sepolia-fork`) uses its upstream's file."""
    return NETWORKS_DIR / f"{network_name.removesuffix('-fork')}.yaml"


def load_network_spec(path: Path) -> NetworkSpec:
    """Reads and validates a network file; one-line SentinelError on any problem."""
    if not path.is_file():
        raise SentinelError(f"network config {path} not found: create it (see data/networks/) or pass --network-config")
    raw = read_mapping(path)
    try:
        return NetworkSpec.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise SentinelError(f"{path}: {field}: {first['msg']}") from None
