"""Trade ids of decisions, sleeves and round trips: the pure parts of the keeper's books."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_abi import encode
from eth_utils import keccak

from keepers.base.clock import now_utc
from keepers.chain.trades import decision_trade_id
from keepers.engine.positions import sleeves
from keepers.persistence.tables import FAILED, MINED, TradeRow
from keepers.views.report import round_trips

EXECUTOR = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
USER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
WETH = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
USDC = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
BASE = (31337, EXECUTOR, USER, USDC, WETH, "rsi_sma", 1_700_000_000)


def test_a_decision_id_is_the_hash_of_its_abi_encoded_fields():
    expected = keccak(encode(["uint256", "address", "address", "address", "address", "string", "uint256"],
                             list(BASE)))
    assert decision_trade_id(*BASE) == expected
    assert decision_trade_id(31337, EXECUTOR.lower(), USER.lower(), USDC, WETH, "rsi_sma", 1_700_000_000) == expected


@pytest.mark.parametrize("position", range(len(BASE)))
def test_every_field_of_a_decision_changes_its_id(position):
    changed = list(BASE)
    changed[position] = {0: 1, 1: USER, 2: EXECUTOR, 3: WETH, 4: USDC, 5: "macd", 6: 1_700_086_400}[position]
    assert decision_trade_id(*changed) != decision_trade_id(*BASE)


def trade(side, amount_in, amount_out, *, day, status=MINED, strategy="rsi_sma", price_in=None, price_out=None):
    usdc_price, weth_price = 10**18, 2000 * 10**18
    return TradeRow(
        trade_id=f"0x{day:02d}{side}", user_id="alice", user_address=USER, keeper_id="k", chain_id=1, asset="WETH",
        strategy=strategy, side=side, bar_time=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=day),
        token_in=USDC if side == "BUY" else WETH, token_out=WETH if side == "BUY" else USDC,
        amount_in=amount_in, amount_out=amount_out, status=status, replaced_tx_hashes=[], dry_run=False,
        price_in=price_in or (usdc_price if side == "BUY" else weth_price),
        price_out=price_out or (weth_price if side == "BUY" else usdc_price),
        gas_used=250_000, gas_price=10**9, created_at=now_utc(), updated_at=now_utc(),
    )


DECIMALS = {"USDC": 6, "WETH": 18}


def test_sleeves_hold_what_the_strategy_bought_at_average_cost():
    rows = [
        trade("BUY", 1_000 * 10**6, 5 * 10**17, day=0),
        trade("BUY", 500 * 10**6, 2 * 10**17, day=1, status=FAILED),  # not mined: no effect
        trade("SELL", 2 * 10**17, 440 * 10**6, day=2),
    ]
    sleeve = sleeves(rows, 6)[("WETH", "rsi_sma")]
    assert sleeve.tokens == 3 * 10**17
    assert sleeve.cost_quote == pytest.approx(600.0)
    assert sleeve.realised_quote == pytest.approx(40.0)  # 440 for 2/5 of a 1000 position


def test_a_round_trip_closes_when_its_sleeve_is_empty_and_counts_costs():
    rows = [
        trade("BUY", 1_000 * 10**6, 49 * 10**16, day=0),  # paid 1000 for 0.49 WETH worth 980
        trade("SELL", 24 * 10**16, 500 * 10**6, day=3),
        trade("SELL", 25 * 10**16, 520 * 10**6, day=4),
        trade("BUY", 800 * 10**6, 4 * 10**17, day=5, strategy="macd"),
    ]
    trips = round_trips(rows, DECIMALS, "USDC")
    closed, open_trip = trips
    assert closed.closed == rows[2].bar_time and closed.pnl_quote == pytest.approx(20.0)
    assert closed.return_pct == pytest.approx(2.0)
    # The fee is 0.3% of what was sold, valued at the oracle: 1000 + 480 + 500 USD.
    assert closed.fee_quote == pytest.approx(0.003 * (1000 + 480 + 500))
    assert closed.gas_eth == pytest.approx(3 * 250_000 * 10**9 / 10**18)
    # Price impact: oracle value sold minus oracle value bought, less the fee.
    impact = (1000 - 980) + (480 - 500) + (500 - 520) - closed.fee_quote
    assert closed.impact_quote == pytest.approx(impact)
    assert open_trip.strategy == "macd" and open_trip.closed is None and open_trip.return_pct != open_trip.return_pct
