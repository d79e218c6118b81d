"""The keeper's configuration: data/config/keeper.yaml and the users file.

Priority, highest first: command-line options > ``SENTINEL_<SETTING>`` environment
variables > the files > built-in defaults. Every problem is one ``SentinelError``
line naming the file (or variable, or option), the field and the fix; unknown keys are
refused with the allowed ones. Relative paths (and a relative SQLite file) are taken
from the project folder, so the keeper runs the same from any working directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError
from keepers.base.redact import REDACTED, redact_text, redact_url
from keepers.settings.network import Address
from keepers.settings.nodes import NODE_TIMEOUT_VARIABLE
from keepers.settings.yaml_files import read_mapping
from strategies.exits import MAX_BPS, PRICE_DECIMALS, Protection
from strategies.registry import did_you_mean
from strategies.risk import RiskLimits

CONFIG_DIR = PROJECT_ROOT / "data" / "config"
DEFAULT_CONFIG_FILE = CONFIG_DIR / "keeper.yaml"
ENV_PREFIX = "SENTINEL_"
# SENTINEL_ variables that are not settings: which file to read, and the fault-injection
# hook of keepers/engine/checkpoints.py.
NON_SETTING_VARIABLES = {"SENTINEL_CONFIG", "SENTINEL_CRASH_AT", NODE_TIMEOUT_VARIABLE}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LOCAL_HOSTS = ("127.0.0.1", "localhost")
NOTICE_KINDS = ("trade", "block", "kill_switch", "failure", "recovery")


class Webhook(_Strict):
    """One webhook the keeper notifies (keepers/watch/notify.py)."""

    url: str = Field(description="where to POST; a credential (Slack and Discord URLs carry a token)")
    format: Literal["json", "slack", "discord"] = Field("json", description="body: generic JSON, Slack or Discord")
    events: list[Literal[NOTICE_KINDS]] = Field(list(NOTICE_KINDS), min_length=1,
                                                description="which notices to send")
    max_per_minute: int = Field(20, ge=1, le=600, description="rate limit; notices past it are dropped and counted")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {redact_url(url)}; e.g. https://hooks.slack.com/services/...")
        return url


class KeeperSettings(_Strict):
    """The main settings (data/config/keeper.yaml)."""

    cycle_interval_seconds: int = Field(60, ge=1, le=7 * 86_400, description="seconds between two cycles of a user")
    rotation: Literal["all", "round_robin"] = Field(
        "all", description="all: every token each cycle; round_robin: one token per cycle, in turn"
    )
    timeframe_seconds: int = Field(86_400, ge=60, description="bar length the strategies work on")
    dry_run: bool = Field(False, description="compute and record everything, send nothing")
    store_url: str = Field("sqlite:///data/state/sentinel.db", description="SQLAlchemy URL of the store")
    redis_url: str = Field("redis://127.0.0.1:6379/0",
                           description="Redis of the distributed form (keeper worker / dispatch): the task broker")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    lease_seconds: int = Field(300, ge=10, description="how long a keeper holds a user without renewing")
    users_per_read: int = Field(100, ge=1, le=10_000, description="users whose cycles share one chain read "
                                "(a worker's task holds this many)")
    read_max_calls: int = Field(1000, ge=20, description="most Multicall3 sub-calls per eth_call of a read "
                                "(below the node's eth_call gas cap and request size limit)")
    dead_man_intervals: int = Field(3, ge=1, description="status fails after this many silent intervals")
    keeper_account: str | None = Field(
        None, description="ape accounts alias of the keeper, or a test-account index on local chains (default 1)")
    keeper_id: str | None = Field(None, min_length=1, description="this keeper's name in heartbeats (default host:pid)")
    tolerance_bps: int = Field(50, ge=0, lt=10_000, description="accepted shortfall below the pool's quote")
    tx_timeout_seconds: int = Field(120, ge=1, description="wait before replacing a pending transaction")
    max_trades_in_flight: int = Field(
        1, ge=1, le=1_000, description="trades the keeper account may have pending at once: 1 waits for each "
        "receipt in its cycle; more sends the due users' trades at consecutive nonces and settles them together")
    admin_ops_refresh_seconds: int = Field(
        60, ge=1, description="how often pending admin operations are read again (users with pause_on_admin_ops)"
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65_535, description="serve Prometheus metrics on 127.0.0.1 at this port (0: any free port)"
    )
    webhooks: list[Webhook] = Field(default_factory=list, description="where trades, blocks and failures are sent")
    api: str | None = Field(None, description="HOST:PORT of the status API and page (null: off; "
                                              "read-only unless api_token is set)")
    api_token: str | None = Field(None, min_length=16, description="bearer token the API requires; needed off localhost")
    users_file: Path = Field(CONFIG_DIR / "users.yaml")
    strategies_file: Path = Field(CONFIG_DIR / "strategies.yaml")
    price_series: dict[str, str] = Field(
        default_factory=lambda: {"WETH": "ETH", "WBTC": "BTC", "LTC": "LTC"},
        description="network token -> the price series its strategies are configured for",
    )

    @field_validator("api")
    @classmethod
    def _host_and_port(cls, api: str | None) -> str | None:
        if api is not None:
            api_address(api)
        return api

    @model_validator(mode="after")
    def _token_off_localhost(self) -> KeeperSettings:
        if self.api is not None and self.api_token is None and api_address(self.api)[0] not in LOCAL_HOSTS:
            raise ValueError(f"api: {self.api} is not a local address; set api_token (SENTINEL_API_TOKEN, "
                             "16 characters or more) or bind 127.0.0.1")
        return self

    @field_validator("store_url")
    @classmethod
    def _valid_store_url(cls, store_url: str) -> str:
        try:
            make_url(store_url)
        except ArgumentError:
            raise ValueError("not a SQLAlchemy URL; e.g. sqlite:///data/state/sentinel.db") from None
        return store_url

    @field_validator("keeper_account", mode="before")
    @classmethod
    def _index_as_text(cls, keeper_account: Any) -> Any:
        # A test-account index reads as a number from YAML and SENTINEL_KEEPER_ACCOUNT=7.
        return str(keeper_account) if isinstance(keeper_account, int) and not isinstance(keeper_account, bool) \
            else keeper_account

    @field_validator("redis_url")
    @classmethod
    def _valid_redis_url(cls, redis_url: str) -> str:
        parts = urlsplit(redis_url)
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            raise ValueError(f"not a Redis URL: {redact_url(redis_url)}; e.g. redis://127.0.0.1:6379/0")
        return redis_url

    def resolved_store_url(self) -> str:
        """``store_url`` with a relative SQLite path taken from the project folder."""
        url = make_url(self.store_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            path = Path(url.database)
            if not path.is_absolute():
                url = url.set(database=str(PROJECT_ROOT / path))
        return url.render_as_string(hide_password=False)

    @property
    def dead_man_seconds(self) -> int:
        """How long a keeper's heartbeat counts as fresh: dead_man_intervals cycle intervals."""
        return self.dead_man_intervals * self.cycle_interval_seconds

    def redacted(self) -> dict[str, Any]:
        """The settings as plain values, the store's password and the webhook and API tokens hidden (for --show-config)."""
        values = self.model_dump(mode="json")
        values["store_url"] = make_url(self.store_url).render_as_string(hide_password=True)
        values["redis_url"] = redact_url(self.redis_url)
        for webhook in values["webhooks"]:
            webhook["url"] = redact_url(webhook["url"])
        if values["api_token"] is not None:
            values["api_token"] = REDACTED
        return values


class Sizing(_Strict):
    """How much one BUY spends: a fixed quote amount, or a share of the quote balance."""

    quote_amount: Decimal | None = Field(None, gt=0)
    vault_share: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Sizing:
        if (self.quote_amount is None) == (self.vault_share is None):
            raise ValueError("give exactly one of quote_amount (e.g. 1000) or vault_share (e.g. 0.25)")
        return self


class RiskProfile(RiskLimits):
    """The shared risk rules' limits plus the keeper's drawdown kill switch."""

    kill_switch_drawdown: float | None = Field(
        0.25, gt=0, lt=1, description="kill switch when vault value falls this far below its peak"
    )


class Funding(_Strict):
    """What `ape run fund` gives an example user on a local chain (deposits, limits)."""

    deposits: dict[str, Decimal] = Field(default_factory=dict)
    max_slippage_bps: int = Field(ge=0, le=1_000)
    max_amount_per_trade: dict[str, Decimal] = Field(default_factory=dict)
    min_trade_interval_seconds: int = Field(default=0, ge=0, lt=2**32)
    # The most keepers may lose of the user's value per day against the oracle (the
    # Executor's loss budget); no default: zero would refuse every trade that pays a fee.
    daily_loss_budget_usd: Decimal = Field(ge=0, lt=Decimal(2**96) / 10**18)
    # Tokens (other than the quote token) the user lets keepers buy for them; unset: the
    # user's own `tokens`. The Executor refuses to buy any other.
    buy_allowed: list[str] | None = None
    # The least USD value of a keeper trade of the user's balance (0: none).
    min_trade_value_usd: Decimal = Field(default=Decimal(0), ge=0, lt=Decimal(2**96) / 10**18)
    # The oldest feed answer the user's trades accept, when tighter than the feed's (0: the feed's).
    max_oracle_age_seconds: int = Field(default=0, ge=0, le=7 * 86_400)


MAX_BOUNTY_BPS = 500  # the Vault's MAX_BOUNTY_BPS: the Executor refuses a larger bounty
MAX_PRICE_USD = Decimal(2**128 - 1).scaleb(-PRICE_DECIMALS)  # setProtection's uint128, 18 decimals


class ExitProtection(_Strict):
    """A user's protective exit of one token (strategies.exits): what `ape run fund` sets
    from the user's own account on a local chain (``Executor.setProtection``); elsewhere
    the user sets it, and the keeper always reads the chain's."""

    stop_loss_usd: Decimal | None = Field(None, description="sell the whole balance at an oracle price at or below")
    take_profit_usd: Decimal | None = Field(None, description="sell the whole balance at an oracle price at or above")
    trailing_pct: Decimal | None = Field(
        None, description="sell at a price this many percent below the highest since the protection started")
    bounty_bps: int = Field(0, description="of the exit's output, paid to a non-keeper who executes it")
    grace_seconds: int = Field(0, description="how long a non-keeper waits between arming and executing the exit")

    @field_validator("stop_loss_usd", "take_profit_usd")
    @classmethod
    def _usd_price(cls, price: Decimal | None) -> Decimal | None:
        if price is not None and not (0 < price <= MAX_PRICE_USD and price.scaleb(PRICE_DECIMALS) % 1 == 0):
            raise ValueError(f"a USD price above 0 with at most {PRICE_DECIMALS} decimals, e.g. 1800; "
                             "leave it out for no such trigger")
        return price

    @field_validator("trailing_pct")
    @classmethod
    def _whole_basis_points(cls, percent: Decimal | None) -> Decimal | None:
        if percent is not None and not (0 < percent < 100 and percent.scaleb(2) % 1 == 0):
            raise ValueError("a percentage above 0 and below 100 with at most two decimals (whole basis points), "
                             "e.g. 15; leave it out for no trailing stop")
        return percent

    @field_validator("bounty_bps")
    @classmethod
    def _bounty_within_cap(cls, bounty_bps: int) -> int:
        if not 0 <= bounty_bps <= MAX_BOUNTY_BPS:
            raise ValueError(f"basis points from 0 to {MAX_BOUNTY_BPS} (the Vault's MAX_BOUNTY_BPS), e.g. 100 for 1%")
        return bounty_bps

    @field_validator("grace_seconds")
    @classmethod
    def _grace_fits(cls, grace_seconds: int) -> int:
        if not 0 <= grace_seconds < 2**32:
            raise ValueError("seconds from 0 to 4294967295, e.g. 3600")
        return grace_seconds

    @model_validator(mode="after")
    def _some_trigger(self) -> ExitProtection:
        if self.stop_loss_usd is None and self.take_profit_usd is None and self.trailing_pct is None:
            raise ValueError("give at least one of stop_loss_usd, take_profit_usd or trailing_pct, "
                             "or remove the token's protection")
        if self.stop_loss_usd is not None and self.take_profit_usd is not None \
                and self.take_profit_usd <= self.stop_loss_usd:
            raise ValueError(f"take_profit_usd {self.take_profit_usd} must be above stop_loss_usd {self.stop_loss_usd} "
                             "(one of them would always hold)")
        return self

    def protection(self) -> Protection:
        """As ``setProtection`` takes it: 18-decimal USD prices, basis points, seconds (0: off)."""
        def e18(price: Decimal | None) -> int:
            return 0 if price is None else int(price.scaleb(PRICE_DECIMALS))
        trailing_bps = 0 if self.trailing_pct is None else int(self.trailing_pct * MAX_BPS / 100)
        return Protection(stop_loss_e18=e18(self.stop_loss_usd), take_profit_e18=e18(self.take_profit_usd),
                          trailing_bps=trailing_bps, bounty_bps=self.bounty_bps, grace_seconds=self.grace_seconds)


class UserConfig(_Strict):
    """One user the keeper trades for."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    address: Address | None = None
    test_account: int | None = Field(None, ge=0, description="anvil test-account index (local chains only)")
    enabled: bool = True
    tokens: list[str] = Field(min_length=1)
    strategies: dict[str, list[str | int]] = Field(
        default_factory=dict, description="per token: strategies replacing the strategies file's choice"
    )
    sizing: Sizing
    risk: RiskProfile = Field(default_factory=RiskProfile)
    pause_on_admin_ops: bool = Field(
        False, description="no trades while an admin operation that affects users is pending on the AccessManager"
    )
    fund: Funding | None = None
    protections: dict[str, ExitProtection] = Field(
        default_factory=dict, description="per token: the user's protective exit, set on-chain by `ape run fund`")

    @model_validator(mode="after")
    def _one_identity(self) -> UserConfig:
        if (self.address is None) == (self.test_account is None):
            raise ValueError("give exactly one of address (0x...) or test_account (local chains)")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("tokens: a token is listed twice")
        unknown = set(self.strategies) - set(self.tokens)
        if unknown:
            raise ValueError(f"strategies: {sorted(unknown)} not in this user's tokens")
        unprotectable = set(self.protections) - set(self.tokens)
        if unprotectable:
            raise ValueError(f"protections: {sorted(unprotectable)} not in this user's tokens (the keeper checks "
                             "only those); add the token to tokens or remove its protection")
        return self


class UsersFile(_Strict):
    """The users file: a list of users with unique ids."""

    users: list[UserConfig]

    @field_validator("users")
    @classmethod
    def _unique(cls, users: list[UserConfig]) -> list[UserConfig]:
        ids = [user.id for user in users]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"user ids must be unique; repeated: {', '.join(repeated)}")
        return users


@dataclass(frozen=True)
class KeeperConfig:
    """Everything the keeper was configured with, merged and validated."""

    settings: KeeperSettings
    users: tuple[UserConfig, ...]
    config_file: Path

    def user(self, user_id: str) -> UserConfig:
        """The user with ``user_id``; SentinelError listing the ids if none."""
        for user in self.users:
            if user.id == user_id:
                return user
        hint = did_you_mean(user_id, [u.id for u in self.users])
        raise SentinelError(f"--user {user_id}: no such user{hint}; users: {', '.join(u.id for u in self.users)}")


def load_keeper_config(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> KeeperConfig:
    """Files, then ``SENTINEL_*`` variables, then ``overrides`` (command line), validated."""
    environ = os.environ if environ is None else environ
    path = _project_path(config_file or environ.get("SENTINEL_CONFIG") or DEFAULT_CONFIG_FILE)
    merged: dict[str, Any] = dict(read_mapping(path)) if path.exists() or config_file else {}
    variables = _environment_settings(environ)
    options = {key: value for key, value in (overrides or {}).items() if value is not None}
    merged.update(variables)
    merged.update(options)
    # A bad value is reported where it came from: the option, the variable, or the file.
    origins = {**{name: ENV_PREFIX + name.upper() for name in variables}, **dict.fromkeys(options, "command line")}
    settings = _validated(KeeperSettings, merged, str(path), origins)
    settings = settings.model_copy(
        update={
            "users_file": _project_path(settings.users_file),
            "strategies_file": _project_path(settings.strategies_file),
        }
    )
    users = load_users(settings.users_file)
    return KeeperConfig(settings=settings, users=users, config_file=path)


def load_users(path: Path) -> tuple[UserConfig, ...]:
    """The users of ``path``, validated."""
    return tuple(_validated(UsersFile, read_mapping(path), str(path)).users)


def _environment_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """``SENTINEL_<SETTING>`` variables as settings; an unknown one is refused."""
    fields = KeeperSettings.model_fields
    values: dict[str, Any] = {}
    for variable, text in environ.items():
        if not variable.startswith(ENV_PREFIX) or variable in NON_SETTING_VARIABLES:
            continue
        name = variable.removeprefix(ENV_PREFIX).lower()
        if name not in fields:
            names = [ENV_PREFIX + field.upper() for field in fields]
            raise SentinelError(f"{variable}: not a keeper setting{did_you_mean(variable, names)}; unset it")
        # YAML scalars: "true", "60" and "null" mean what they mean in the file.
        try:
            values[name] = yaml.safe_load(text) if text.strip() else None
        except (yaml.YAMLError, RecursionError):
            raise SentinelError(f"{variable}: {text[:40]!r} is not a value YAML can read; quote it "
                                "(e.g. '\"*x\"') or fix it") from None
    return values


def _validated(model: type[BaseModel], raw: Mapping[str, Any], source: str, origins: Mapping[str, str] | None = None):
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        location = error.errors()[0]["loc"]
        where = (origins or {}).get(location[0], source) if location else source
        raise SentinelError(f"{where}: {validation_problem(error, raw)}") from None


def validation_problem(error: ValidationError, raw: Any = None) -> str:
    """pydantic's first error as "field: problem (fix)", naming the key at fault."""
    first = error.errors()[0]
    location = _location(first["loc"], raw)
    if first["type"] == "extra_forbidden":
        return f"{location}: unknown key; remove it or check its spelling"
    if first["type"] == "missing":
        return f"{location}: missing; add it"
    message = first["msg"].removeprefix("Value error, ")
    # A URL in the input (a webhook's) is shown without its token.
    return f"{location}: {message}" + (
        f" (got {redact_text(repr(first['input']))})" if not isinstance(first["input"], dict) else "")


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    """('users', 0, 'sizing') as "users[0] (alice).sizing": list items named by their id."""
    text = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, Mapping) and "id" in node:
                text += f" ({node['id']})"
        else:
            text += f".{part}" if text else str(part)
            node = node.get(part) if isinstance(node, Mapping) else None
    return text or "(top level)"


def api_address(api: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv4 address or a host name) as (host, port); ValueError naming the form."""
    host, colon, port = api.rpartition(":")
    if not colon or not host or not port.isdigit() or int(port) > 65_535:
        raise ValueError(f"{api!r} is not HOST:PORT; e.g. 127.0.0.1:8787 (port 0: any free port)")
    return host, int(port)


def _project_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path
