"""Custody against a misbehaving router (allow-listed by mistake or compromised): the
vault credits only what arrived, refuses less than the minimum, and refunds input the
router did not take. The real Uniswap V2 router never reaches these paths."""

import pytest
from helpers_contracts import changes, custody_state, reverts_with, units

AMOUNT_IN = units(1_000, 6)


@pytest.fixture
def faulty_router(project, owner, executor, weth):
    """A router holding 10 WETH that it pays out as configured."""
    router = owner.deploy(project.MockFaultyRouter)
    executor.addRouter(router, sender=owner)
    weth.mint(router, units(10, 18), sender=owner)
    return router


@pytest.fixture
def send(executor, faulty_router, keeper, trader, usdc, weth, chain, trade_id):
    def execute(min_amount_out):
        return executor.executeTrade(
            trader, usdc, weth, AMOUNT_IN, min_amount_out, faulty_router, chain.pending_timestamp + 600,
            trade_id(1), sender=keeper,
        )  # fmt: skip

    return execute


def test_execute_trade__router_pays_nothing__reverts(executor, vault, faulty_router, send, trader, usdc, weth):
    faulty_router.configure(10_000, 0, sender=trader)
    floor = executor.oracleFloor(trader, usdc, weth, AMOUNT_IN)
    holders = {"alice": trader, "router": faulty_router}
    before = custody_state(vault, [usdc, weth], holders)
    with reverts_with(vault.VaultInsufficientOutput, received=0, minimum=floor):
        send(floor)
    assert custody_state(vault, [usdc, weth], holders) == before


def test_execute_trade__router_pays_below_minimum__reverts(executor, vault, faulty_router, send, trader, usdc, weth):
    floor = executor.oracleFloor(trader, usdc, weth, AMOUNT_IN)
    faulty_router.configure(10_000, floor - 1, sender=trader)
    holders = {"alice": trader, "router": faulty_router}
    before = custody_state(vault, [usdc, weth], holders)
    with reverts_with(vault.VaultInsufficientOutput, received=floor - 1, minimum=floor):
        send(floor)
    assert custody_state(vault, [usdc, weth], holders) == before


def test_execute_trade__router_takes_half__unspent_input_stays_with_user(
    executor, vault, faulty_router, send, trader, usdc, weth
):
    floor = executor.oracleFloor(trader, usdc, weth, AMOUNT_IN)
    faulty_router.configure(5_000, floor, sender=trader)
    holders = {"alice": trader, "router": faulty_router}
    before = custody_state(vault, [usdc, weth], holders)

    tx = send(floor)

    half = AMOUNT_IN // 2
    assert tx.events.filter(vault.Swapped)[0].amountIn == half
    assert changes(before, custody_state(vault, [usdc, weth], holders)) == {
        ("vault", "alice", "USDC"): -half,
        ("wallet", "vault", "USDC"): -half,
        ("accounted", "USDC"): -half,
        ("wallet", "router", "USDC"): half,
        ("vault", "alice", "WETH"): floor,
        ("wallet", "vault", "WETH"): floor,
        ("accounted", "WETH"): floor,
        ("wallet", "router", "WETH"): -floor,
    }
    assert usdc.allowance(vault, faulty_router) == 0
