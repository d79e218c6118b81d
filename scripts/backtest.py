"""`ape run backtest`: run strategies over price data and write a report.

Needs no network, so it is a plain click command; all the work is in `strategies`.
"""

from pathlib import Path

import click
from pydantic import ValidationError
from rich.console import Console

from strategies.backtest import (
    BacktestConfig,
    BacktestError,
    TradeSize,
    run_backtest,
    run_grid,
)
from strategies.data import DataError, load_prices
from strategies.registry import (
    StrategyRegistryError,
    build_strategy,
    describe_strategies,
    strategy_class,
)
from strategies.report import (
    default_report_dir,
    grid_progress,
    print_summary,
    run_record,
    write_report,
)
from strategies.risk import RiskLimits


@click.command(short_help="Backtest strategies over price data")
@click.option("--strategy", "strategy_keys", multiple=True, metavar="NAME|ID",
              help="Strategy name or id (see --list); repeat to run several side by side.")
@click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Price file: CSV (or Parquet with pyarrow) with timestamp and close columns.")
@click.option("--token", "tokens", multiple=True,
              help="Token to run (repeatable; default: every token in the file). Names a file without a token column.")
@click.option("--param", "param_items", multiple=True, metavar="[STRATEGY.]NAME=VALUE",
              help="Strategy parameter; prefix it with the strategy's name when running several.")
@click.option("--grid", "grid_items", multiple=True, metavar="NAME=A,B,C",
              help="Run every combination of these parameter values (one strategy).")
@click.option("--initial-balance", default=10_000.0, show_default=True, type=float,
              help="Starting quote balance, split equally between strategy-token pairs.")
@click.option("--trade-size", default="100%", show_default=True,
              help="BUY budget: a quote amount (1000) or a share of equity (25%).")
@click.option("--fee-bps", default=30.0, show_default=True, type=float, help="Fee on each trade's notional, in bps.")
@click.option("--slippage-bps", default=10.0, show_default=True, type=float, help="Adverse price move per fill, in bps.")
@click.option("--pool-depth", "pool_depth_quote", type=float, default=None,
              help="Quote-side reserve of a Uniswap V2 pool: adds its 0.3% fee and price impact.")
@click.option("--gas", "gas_quote", default=0.0, show_default=True, type=float, help="Gas cost per trade, in quote units.")
@click.option("--fill-at", type=click.Choice(["open", "close"]), default="open", show_default=True,
              help="Fill each signal at the next bar's open or close.")
@click.option("--fill-gaps", is_flag=True, help="Forward-fill missing bars instead of rejecting the file.")
@click.option("--with-risk", is_flag=True, help="Apply the keeper's risk rules (defaults, or as set by --risk).")
@click.option("--risk", "risk_items", multiple=True, metavar="NAME=VALUE",
              help="Risk limit, e.g. cooldown=2d, loss_pause=PT30M, max_trades=none (implies --with-risk).")
@click.option("--rank-by", default="Sharpe Ratio", show_default=True, help="Metric that picks the best grid point.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Processes that share a grid's points (forked; Linux and macOS).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Report folder (default: reports/backtest-<UTC time>).")
@click.option("--list", "list_only", is_flag=True, help="List the strategies and their parameters, then exit.")
def cli(strategy_keys, data_path, tokens, param_items, grid_items, initial_balance, trade_size, fee_bps,
        slippage_bps, pool_depth_quote, gas_quote, fill_at, fill_gaps, with_risk, risk_items, rank_by,
        workers, out_dir, list_only):
    """Backtest strategies over price data and write stats.json, trades.csv, equity.csv and equity.png."""
    if list_only:
        click.echo(describe_strategies())
        return
    if not strategy_keys:
        raise click.UsageError("give --strategy NAME|ID (see --list)")
    if data_path is None:
        raise click.UsageError("give --data FILE")
    grid = {name: [_value(v) for v in text.split(",")] for name, text in _assignments(grid_items, "--grid").items()}
    if grid and len(strategy_keys) > 1:
        raise click.BadParameter("a grid runs one strategy; give one --strategy", param_hint="--grid")
    try:
        params = _strategy_params(strategy_keys, _assignments(param_items, "--param"))
        config = BacktestConfig(
            initial_balance=initial_balance,
            trade_size=_parsed(TradeSize.parse, trade_size, "--trade-size"),
            fee_bps=fee_bps,
            slippage_bps=slippage_bps,
            pool_depth_quote=pool_depth_quote,
            gas_quote=gas_quote,
            fill_at=fill_at,
            risk=_risk_limits(risk_items) if with_risk or risk_items else None,
        )
        data = load_prices(data_path, list(tokens) or None, fill_gaps)
        strategies = [build_strategy(key, params[key]) for key in strategy_keys]
        console = Console()
        for note in data.notes:
            console.print(f"note: {note}")
        for token, count in data.filled_bars.items():
            if count:
                console.print(f"filled {count} missing bars of {token}")
        grid_result = None
        if grid:
            key = strategy_keys[0]
            with grid_progress(console) as progress:
                grid_result = run_grid(data, lambda point: build_strategy(key, {**params[key], **point}),
                                       grid, config, rank_by, progress, workers)
            result = grid_result.best
            strategies = [result.sleeves[0].strategy]
        else:
            result = run_backtest(data, strategies, config)
    except (DataError, BacktestError, StrategyRegistryError) as err:
        raise click.ClickException(str(err)) from None
    paths = write_report(result, out_dir or default_report_dir(), run_record(data, strategies, config), grid_result)
    print_summary(result, console, grid_result)
    console.print(f"report: {paths['stats.json'].parent}")


def _assignments(items, option):
    """NAME=VALUE strings as a dict, each problem a BadParameter."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint=option)
        pairs[name.strip()] = value.strip()
    return pairs


def _strategy_params(keys, assignments):
    """Each strategy's parameters: plain NAME=VALUE for all, STRATEGY.NAME=VALUE for one."""
    names = {key: strategy_class(key).name for key in keys}
    params = {key: {} for key in keys}
    for name, value in assignments.items():
        owner, dot, param = name.rpartition(".")
        targets = [key for key in keys if not dot or names[key] == owner]
        if not targets:
            raise click.BadParameter(f"{owner!r} is not one of the strategies run ({', '.join(names.values())})",
                                     param_hint="--param")
        for key in targets:
            params[key][param] = _value(value)
    return params


def _risk_limits(items):
    overrides = {name: None if value.lower() in ("none", "off") else value
                 for name, value in _assignments(items, "--risk").items()}
    try:
        return RiskLimits(**overrides)
    except ValidationError as err:
        error = err.errors()[0]
        known = ", ".join(RiskLimits.model_fields)
        raise click.BadParameter(f"{'.'.join(map(str, error['loc']))}: {error['msg']} (limits: {known})",
                                 param_hint="--risk") from None


def _parsed(parse, text, option):
    try:
        return parse(text)
    except BacktestError as err:
        raise click.BadParameter(str(err), param_hint=option) from None


def _value(text):
    """A command-line value as int, float or (otherwise) the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text
