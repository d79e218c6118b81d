"""The users file's protective exits: read as the Executor stores them (18-decimal USD
prices, basis points), and every bad value refused in one line naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from keepers.base.errors import SentinelError
from keepers.settings.keeper import load_keeper_config
from strategies.exits import Protection

USER = {"id": "dora", "test_account": 6, "tokens": ["WETH", "LTC"], "sizing": {"quote_amount": 100}}
WHERE = "users[0] (dora).protections"


def load(folder: Path, protections: dict):
    users_file = folder / "users.yaml"
    users_file.write_text(yaml.safe_dump({"users": [{**USER, "protections": protections}]}))
    config = folder / "keeper.yaml"
    config.write_text(yaml.safe_dump({"users_file": str(users_file)}))
    return load_keeper_config(config, environ={}).users[0]


def test_protections_are_read_as_the_executor_stores_them(tmp_path):
    user = load(tmp_path, {"WETH": {"stop_loss_usd": 1_800.5, "take_profit_usd": 4_000, "trailing_pct": 7.25,
                                    "bounty_bps": 500, "grace_seconds": 3_600},
                           "LTC": {"trailing_pct": 15}})
    assert user.protections["WETH"].protection() == Protection(
        stop_loss_e18=1_800_500_000_000_000_000_000, take_profit_e18=4_000 * 10**18, trailing_bps=725,
        bounty_bps=500, grace_seconds=3_600)
    assert user.protections["LTC"].protection() == Protection(trailing_bps=1_500)
    assert load(tmp_path, {}).protections == {}


def test_the_example_users_have_a_trailing_stop_and_a_stop_loss():
    users = {user.id: user for user in load_keeper_config(environ={}).users}
    assert users["bob"].protections["WBTC"].protection().trailing_bps == 1_500
    assert users["carol"].protections["LTC"].protection().stop_loss_e18 == 43 * 10**18


@pytest.mark.parametrize(
    ("protections", "message"),
    [
        ({"WETH": {"trailing_pct": 100}}, f"{WHERE}.WETH.trailing_pct: a percentage above 0 and below 100"),
        ({"WETH": {"trailing_pct": 12.345}}, "with at most two decimals (whole basis points), e.g. 15"),
        ({"WETH": {"trailing_pct": 0}}, f"{WHERE}.WETH.trailing_pct: a percentage above 0"),
        ({"WETH": {"stop_loss_usd": -5}}, f"{WHERE}.WETH.stop_loss_usd: a USD price above 0 with at most 18 decimals"),
        ({"WETH": {"take_profit_usd": 2**128}}, f"{WHERE}.WETH.take_profit_usd: a USD price above 0"),
        ({"WETH": {"trailing_pct": 10, "bounty_bps": 501}},
         f"{WHERE}.WETH.bounty_bps: basis points from 0 to 500 (the Vault's MAX_BOUNTY_BPS)"),
        ({"WETH": {"trailing_pct": 10, "grace_seconds": 2**32}}, f"{WHERE}.WETH.grace_seconds: seconds from 0 to"),
        ({"WETH": {"bounty_bps": 100}},
         f"{WHERE}.WETH: give at least one of stop_loss_usd, take_profit_usd or trailing_pct, or remove the token's"),
        ({"WETH": {"stop_loss_usd": 2_000, "take_profit_usd": 2_000}},
         f"{WHERE}.WETH: take_profit_usd 2000 must be above stop_loss_usd 2000"),
        ({"WETH": {"trailing_pct": 10, "trailng_bps": 5}}, f"{WHERE}.WETH.trailng_bps: unknown key"),
        ({"WBTC": {"trailing_pct": 10}}, "users[0] (dora): protections: ['WBTC'] not in this user's tokens"),
    ],
)
def test_a_bad_protection_is_one_line_naming_the_field_and_the_fix(tmp_path, protections, message):
    with pytest.raises(SentinelError) as raised:
        load(tmp_path, protections)
    assert message in str(raised.value) and "\n" not in str(raised.value)
