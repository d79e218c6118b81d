"""`ape run simulate` from start to report: the keepers wired as `ape run keeper` wires
them, the replay bar by bar with a progress bar and one line per trade, then the
comparison with the backtester written to the report folder and printed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from ape import accounts, chain
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from keepers.base.errors import SentinelError
from keepers.chain.client import UserSnapshot
from keepers.chain.deployment import DeploymentRecord
from keepers.engine.cycle import user_limits
from keepers.persistence.store import Store
from keepers.referee.commands import verify_trades
from keepers.replay.driver import market_driver_for
from keepers.replay.report import ReplayContext, compare_user, print_summary, write_run_report
from keepers.replay.runner import MarketWalk, Replay, chain_offset, load_window
from keepers.runner.process import KeeperProcess
from keepers.settings.keeper import KeeperConfig, UserConfig
from keepers.settings.network import NetworkSpec

INTERRUPTED = 130  # the exit code of a run stopped by Ctrl-C, as a shell reports it


@dataclass(frozen=True)
class ReplayRequest:
    """What `ape run simulate` was asked to replay, and where its report goes."""

    data_path: Path
    start: object  # a datetime, or None for the file's first bar
    bars: int | None
    out_dir: Path
    pace_seconds: float
    store_described: str  # how the banner names the keepers' store


def simulate(request: ReplayRequest, config: KeeperConfig, users: tuple[UserConfig, ...], spec: NetworkSpec,
             record: DeploymentRecord, record_file: Path, network: str, console: Console,
             echo) -> int:
    """Replays the request on the connected local chain; returns the exit code (0, or
    130 when interrupted: the report then covers the bars that ran)."""
    settings = config.settings
    window = load_window(request.data_path, [settings.price_series[t.symbol] for t in spec.tokens
                                             if t.symbol in settings.price_series], request.start, request.bars)
    if window.interval_seconds != settings.timeframe_seconds:
        raise SentinelError(
            f"--data: bars are {window.interval_seconds} s apart but timeframe_seconds is {settings.timeframe_seconds}")
    driver = market_driver_for(record, spec.quote.symbol, accounts.test_accounts[0], record_file)
    store = Store.open(settings.resolved_store_url())
    try:
        process = KeeperProcess.start(config, spec, record, store, users, network=network, local_chain=True,
                                      echo=echo, cycle_report=lambda line: None)
        starting = _starting_state(process, users, spec)
        offset = chain_offset(window.closes.index[0], window.interval_seconds, chain.blocks.head.timestamp)
        first_block = chain.blocks.head.number + 1  # the replay's own trades are mined from here on
        process.scheduler.install_signal_handlers()  # Ctrl-C from here on: finish the bar, report what ran
        console.print(f"Replaying {window.bars} bars of {request.data_path.name} "
                      f"({window.closes.index[0]:%Y-%m-%d} to {window.closes.index[-1]:%Y-%m-%d}) for "
                      f"{', '.join(u.id for u in users)}; keeper store {request.store_described}")
        token_series = {token: series for token, series in settings.price_series.items() if token in record.tokens}
        market = MarketWalk(driver=driver, spec=spec, window=window, token_series=token_series, offset_seconds=offset)
        try:
            done = _replay_with_progress(Replay(scheduler=process.scheduler, market=market), console,
                                         window.bars, request.pace_seconds)
        finally:
            process.close()
        if done == 0:
            console.print("Interrupted before the first bar; nothing to report.")
            return INTERRUPTED
        replayed = replace(window, closes=window.closes.iloc[:done])  # all of it, unless interrupted
        context = ReplayContext(
            window=replayed, offset_seconds=offset, token_series=token_series, decimals=spec.decimals,
            quote=spec.quote.symbol, pool_depth_quote=float(spec.pool_depth_usd),
            seed_prices={token.symbol: float(token.price_usd) for token in spec.tokens},
            starting_balances={user_id: snapshot.balances for user_id, snapshot in starting.items()},
            limits={user.id: user_limits(user, spec.quote.symbol, spec.quote.decimals, starting[user.id])
                    for user in users},
            max_slippage_bps={user_id: snapshot.max_slippage_bps for user_id, snapshot in starting.items()},
            daily_loss_budget_usd=_loss_budgets(process, users))
        strategies = process.context.user_strategies
        comparisons = {user.id: compare_user(store, user, {t: strategies[(user.id, t)] for t in user.tokens}, context)
                       for user in users}
        verdict = _verify_line(config, users, spec, record, first_block,
                               (window.closes.index[0] + pd.Timedelta(seconds=offset)).to_pydatetime())
        run = {"data": str(request.data_path), "bars": done, "from": str(window.closes.index[0]),
               "chain_offset_seconds": offset, "users": [u.id for u in users], "interrupted": done < window.bars,
               "verify": verdict}
        paths = write_run_report(request.out_dir, comparisons, run)
    finally:
        store.close()
    print_summary(console, comparisons, paths["summary.json"].parent)
    console.print(verdict)
    if done < window.bars:
        console.print(f"Interrupted after {done} of {window.bars} bars; the report covers those.")
        return INTERRUPTED
    return 0


def _verify_line(config: KeeperConfig, users: tuple[UserConfig, ...], spec: NetworkSpec, record: DeploymentRecord,
                 first_block: int, first_bar) -> str:
    """The referee's summary line of the replay's own trades, read from the chain alone (the
    keepers' bars start at the window's first: their store was empty before it); a referee
    that cannot read the chain says why on the line instead of costing the report."""
    try:
        return verify_trades(config, users, spec, record, local_chain=True, every_user=False,
                             from_block=first_block, history_from=first_bar).summary()
    except SentinelError as error:
        return f"verify: not run: {error}"


def _replay_with_progress(replay: Replay, console: Console, bars: int, pace_seconds: float) -> int:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("bars", total=bars)

        def on_bar(done, stamp, results):
            for result in results:
                if result.trades_ok or result.trades_failed or result.error:
                    progress.console.print(f"{stamp:%Y-%m-%d}  {result.user_id:<6} " + "; ".join(result.events)
                                           + (f" ERROR {result.error}" if result.error else ""))
            progress.update(task, completed=done)

        return replay.run(on_bar, pace_seconds=pace_seconds)


def _loss_budgets(process: KeeperProcess, users: tuple[UserConfig, ...]) -> dict[str, float]:
    """Each user's daily loss budget on the Executor (USD) before the first bar."""
    client, addresses = process.context.client, process.context.user_addresses
    return {user.id: client.executor.lossBudget(addresses[user.id]).dailyBudgetUsd / 10**18 for user in users}


def _starting_state(process: KeeperProcess, users: tuple[UserConfig, ...],
                    spec: NetworkSpec) -> dict[str, UserSnapshot]:
    """Each user's vault balances and on-chain limits before the first bar: where the
    user backtest starts."""
    client, addresses = process.context.client, process.context.user_addresses
    return {user.id: client.snapshot(addresses[user.id], [spec.quote.symbol, *user.tokens]) for user in users}
