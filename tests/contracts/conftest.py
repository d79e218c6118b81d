"""Fixtures for the contract suite: roles, tokens, feeds, the real Uniswap V2 market,
and a wired Vault + Executor. Session-scoped; Ape reverts the chain after each test."""

from __future__ import annotations

import pytest
from helpers_contracts import (
    DEFAULT_LOSS_BUDGET_USD,
    DEFAULT_SLIPPAGE_BPS,
    FEED_DECIMALS,
    MAX_AGE,
    POOL_DEPTH_USD,
    PRICES_USD,
    units,
)

from keepers.chain.access import role_calls, send
from keepers.chain.uniswap import uniswap_v2_container


@pytest.fixture(scope="session")
def owner(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def keeper(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def alice(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def bob(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def outsider(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def make_token(project, owner):
    def make(symbol: str, decimals: int, container=None):
        return owner.deploy(container or project.MockToken, f"Test {symbol}", symbol, decimals)

    return make


@pytest.fixture(scope="session")
def tokens(make_token):
    """WETH (18 decimals), WBTC (8) and USDC (6) test tokens."""
    return {"WETH": make_token("WETH", 18), "WBTC": make_token("WBTC", 8), "USDC": make_token("USDC", 6)}


@pytest.fixture(scope="session")
def weth(tokens):
    return tokens["WETH"]


@pytest.fixture(scope="session")
def wbtc(tokens):
    return tokens["WBTC"]


@pytest.fixture(scope="session")
def usdc(tokens):
    return tokens["USDC"]


@pytest.fixture(scope="session")
def make_feed(project, owner):
    def make(price_usd: float, decimals: int = FEED_DECIMALS):
        return owner.deploy(project.MockFeed, decimals, units(price_usd, decimals))

    return make


@pytest.fixture(scope="session")
def feeds(tokens, make_feed):
    return {symbol: make_feed(PRICES_USD[symbol]) for symbol in tokens}


@pytest.fixture(scope="session")
def uniswap(owner):
    """The real Uniswap V2 factory, WETH9 and Router02 from the npm artifacts."""
    weth9 = owner.deploy(uniswap_v2_container("WETH9"))
    factory = owner.deploy(uniswap_v2_container("UniswapV2Factory"), owner.address)
    router = owner.deploy(uniswap_v2_container("UniswapV2Router02"), factory.address, weth9.address)
    return {"factory": factory, "router": router, "weth9": weth9}


@pytest.fixture(scope="session")
def router(uniswap):
    return uniswap["router"]


@pytest.fixture(scope="session")
def add_pool(owner, router):
    """Seeds a pool of `token_a`/`token_b` at the given USD prices."""

    def add(token_a, price_a: float, token_b, price_b: float, depth_usd: float = POOL_DEPTH_USD):
        amount_a = units(depth_usd / 2 / price_a, token_a.decimals())
        amount_b = units(depth_usd / 2 / price_b, token_b.decimals())
        token_a.mint(owner, amount_a, sender=owner)
        token_b.mint(owner, amount_b, sender=owner)
        token_a.approve(router, amount_a, sender=owner)
        token_b.approve(router, amount_b, sender=owner)
        router.addLiquidity(
            token_a, token_b, amount_a, amount_b, 0, 0, owner, 2**63, sender=owner
        )

    return add


@pytest.fixture(scope="session")
def pools(tokens, add_pool):
    """WETH/USDC and WBTC/USDC pools at the feed prices."""
    for symbol in ("WETH", "WBTC"):
        add_pool(tokens[symbol], PRICES_USD[symbol], tokens["USDC"], PRICES_USD["USDC"])


@pytest.fixture(scope="session")
def manager(project, owner):
    """The AccessManager; the owner is its admin without delay (unit tests act at once;
    tests/contracts/test_access.py gives the roles their delays)."""
    return owner.deploy(project.SentinelAccessManager, owner)


@pytest.fixture(scope="session")
def grant_roles(manager, owner, guardian):
    """Applies the production role table (keepers.chain.access) to the given targets."""

    def grant(targets: dict):
        for call in role_calls(manager, targets, owner.address, guardian.address):
            send(manager, call, owner)

    return grant


@pytest.fixture(scope="session")
def vault(project, manager, owner, tokens, grant_roles):
    vault = owner.deploy(project.Vault, manager)
    grant_roles({"Vault": vault})
    for token in tokens.values():
        vault.listToken(token, sender=owner)
    return vault


@pytest.fixture(scope="session")
def executor(project, manager, owner, keeper, vault, router, tokens, feeds, pools, grant_roles):
    executor = owner.deploy(project.Executor, manager, vault, tokens["USDC"])
    grant_roles({"Executor": executor})
    vault.setExecutor(executor, sender=owner)
    executor.addKeeper(keeper, sender=owner)
    executor.addRouter(router, sender=owner)
    for symbol, token in tokens.items():
        executor.setFeed(token, feeds[symbol], MAX_AGE, 0, 0, sender=owner)
    return executor


@pytest.fixture(scope="session")
def fund(vault):
    """Mints `amount` base units of `token` to `user` and deposits them into the vault."""

    def deposit(user, token, amount: int):
        token.mint(user, amount, sender=user)
        token.approve(vault, amount, sender=user)
        vault.deposit(token, amount, sender=user)

    return deposit


@pytest.fixture(scope="session")
def opt_in(executor):
    """Opts `user` in with a slippage limit, per-trade maxima per token, a daily loss
    budget (large by default: tests/contracts/test_loss_budget.py tests small ones) and
    the tokens keepers may buy for them (`buy`; default: every token given a maximum,
    the quote token needs none)."""

    def configure(user, max_amounts: dict, slippage_bps: int = DEFAULT_SLIPPAGE_BPS,
                  loss_budget_usd: int = DEFAULT_LOSS_BUDGET_USD, buy=None):  # fmt: skip
        executor.setUserLimits(True, slippage_bps, sender=user)
        executor.setDailyLossBudget(loss_budget_usd, sender=user)
        for token, amount in max_amounts.items():
            executor.setMaxAmountPerTrade(token, amount, sender=user)
        for token in max_amounts if buy is None else buy:
            if not executor.isBuyAllowed(user, token):
                executor.setBuyAllowed(token, True, sender=user)

    return configure


@pytest.fixture(scope="session")
def trade_id():
    """Distinct idempotency keys: trade_id(1), trade_id(2), ..."""

    def make(n: int) -> bytes:
        return n.to_bytes(32, "big")

    return make


@pytest.fixture
def funded_alice(alice, usdc, weth, fund, opt_in):
    """Alice holds 10,000 USDC and 5 WETH in the vault and has opted in."""
    fund(alice, usdc, units(10_000, 6))
    fund(alice, weth, units(5, 18))
    opt_in(alice, {usdc: units(5_000, 6), weth: units(2, 18)})
    return alice


@pytest.fixture
def trader(funded_alice, wbtc, fund, executor):
    """Alice: 10,000 USDC, 5 WETH and 0.5 WBTC in the vault; per-trade maxima 5,000 USDC,
    2 WETH, 0.1 WBTC; slippage 1%; keepers may buy WETH and WBTC for her."""
    fund(funded_alice, wbtc, units(0.5, 8))
    executor.setMaxAmountPerTrade(wbtc, units(0.1, 8), sender=funded_alice)
    executor.setBuyAllowed(wbtc, True, sender=funded_alice)
    return funded_alice


@pytest.fixture
def ledger(vault, trader, tokens):
    """Reads the trader's vault balances, the accounted totals and the vault's real balances."""

    def read():
        return {
            symbol: (vault.balanceOf(trader, token), vault.accountedTotal(token), token.balanceOf(vault))
            for symbol, token in tokens.items()
        }

    return read
