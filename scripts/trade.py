"""`ape run trade`: one keeper trade through the Executor, checked against the oracle."""

import uuid

import click
from ape import project

from keepers.base.units import format_amount, to_base_units
from keepers.chain.accounts import resolve_account
from keepers.chain.client import require_multicall3
from keepers.chain.trades import make_trade_id, plan_trade, send_trade
from keepers.cli import (
    SentinelCommand,
    deployments_option,
    load_spec,
    network_config_option,
    require_record,
    user_errors,
)
from keepers.engine.startup import user_address
from keepers.settings.keeper import load_keeper_config
from keepers.settings.network import parse_address
from keepers.settings.nodes import is_local_chain


@click.command(cls=SentinelCommand, short_help="Execute one trade for a user")
@click.option("--user", "user_choice", required=True, help="User: address, an id of the users file (alice), or a test-account index locally.")
@click.option("--sell", required=True, help="Symbol of the token sold.")
@click.option("--buy", required=True, help="Symbol of the token bought.")
@click.option("--amount", required=True, help="Amount sold, in whole tokens (e.g. 100.5).")
@click.option("--keeper", "keeper_choice", help="Keeper: an `ape accounts` alias (test account 1 locally).")
@click.option("--trade-id", "nonce", default=None, help="Idempotency nonce; re-using one never trades twice.")
@click.option("--tolerance-bps", default=50, show_default=True, type=click.IntRange(0, 9_999),
              help="Accepted shortfall below the pool's quote (never below the oracle floor).")
@network_config_option()
@deployments_option()
@user_errors
def cli(ecosystem, network, user_choice, sell, buy, amount, keeper_choice, nonce, tolerance_bps,
        network_config, deployments_dir):
    local = is_local_chain(network)
    spec = load_spec(network, network_config)
    record = require_record(ecosystem, network, deployments_dir)
    sell_spec, buy_spec = spec.token(sell), spec.token(buy)
    user = _user_address(user_choice, local)
    keeper = resolve_account(keeper_choice, role="keeper", local=local, option="--keeper")
    require_multicall3(local_chain=local)  # the plan is one Multicall3 read
    executor = project.Executor.at(record.address_of("Executor"))
    amount_in = to_base_units(amount, sell_spec.decimals, "--amount")
    token_in, token_out = record.tokens[sell], record.tokens[buy]
    trade_id = make_trade_id(user, token_in, token_out, amount_in, nonce or uuid.uuid4().hex)
    plan = plan_trade(executor, record.address_of("UniswapV2Router02"), user, token_in, token_out, amount_in,
                      trade_id, tolerance_bps=tolerance_bps)
    result = send_trade(executor, keeper, plan)
    click.echo(
        f"Traded {format_amount(result.amount_in, sell_spec.decimals)} {sell} for "
        f"{format_amount(result.amount_out, buy_spec.decimals)} {buy} "
        f"(oracle floor {format_amount(plan.oracle_floor, buy_spec.decimals)}) "
        f"in {result.tx_hash}, trade id 0x{result.trade_id.hex()}"
    )


def _user_address(choice, local):
    if choice.startswith("0x"):
        return parse_address(choice, "--user")
    if not choice.isdigit():
        return user_address(load_keeper_config().user(choice), local)
    return resolve_account(choice, role="user", local=local, option="--user").address
