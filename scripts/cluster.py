"""`ape run cluster`: the distributed form on one machine, trading on replayed prices.

Starts a throwaway PostgreSQL (the shared store) and Redis (the task broker), then
``--workers`` `ape run keeper worker` processes (each signing with its own keeper
account of the deployment) and one `ape run keeper dispatch`, all as processes, and
moves the local market one bar of ``--data`` every ``--interval`` seconds (the
replay's market driver) so the workers have something to decide. A move happens only
between cycles, as in `ape run simulate`: the driver takes every user's lease around
it (a day passes in one move; a trade in flight across it would fail its deadline or
the new oracle floor), so a user whose task arrives meanwhile skips that slot. At the end (the last
bar, or Ctrl-C) every process and server is stopped by process id and what the
workers did is summed up from the store. The processes' output is in ``--out``.

The same processes on several machines: see docs/scaling.md.
"""

from datetime import UTC, datetime
from pathlib import Path

import click
from ape.logging import logger

from keepers import PROJECT_ROOT
from keepers.chain.deployment import record_path
from keepers.chain.onchain import require_local_chain
from keepers.cli import (
    SentinelCommand,
    deployments_option,
    load_spec,
    network_config_option,
    require_record,
    user_errors,
)
from keepers.replay.cluster_run import ClusterRequest, run_cluster
from keepers.replay.runner import SAMPLE_PRICES
from keepers.settings.keeper import load_keeper_config


@click.command(cls=SentinelCommand, short_help="The distributed keepers on one machine (PostgreSQL, Redis, workers)")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Worker processes; each needs its own keeper account allowed by deploy (--keeper, repeatable).")
@click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path), default=SAMPLE_PRICES,
              show_default=True, help="Daily prices the market moves through.")
@click.option("--bars", type=click.IntRange(2), default=120, show_default=True, help="Bars to replay.")
@click.option("--interval", "bar_seconds", type=click.FloatRange(0.5), default=3.0, show_default=True,
              help="Seconds between two bars (each user's cycle runs every second).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keeper config (default: data/config/keeper.yaml).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the processes' logs (default: reports/cluster-<UTC time>).")
@network_config_option()
@deployments_option()
@user_errors
def cli(ecosystem, network, workers, data_path, bars, bar_seconds, config_file, out_dir, network_config,
        deployments_dir):
    """Run the dispatcher and workers with PostgreSQL and Redis while the market moves."""
    require_local_chain("the market driver")
    logger.set_level("WARNING")
    out_dir = out_dir or PROJECT_ROOT / "reports" / datetime.now(UTC).strftime("cluster-%Y%m%d-%H%M%S")
    config = load_keeper_config(config_file, {"cycle_interval_seconds": 1})
    arguments = ["--network", f"{ecosystem.name}:{network.name}", "--deployments", str(deployments_dir),
                 *(["--config", str(config_file)] if config_file else []),
                 *(["--network-config", str(network_config)] if network_config else [])]
    request = ClusterRequest(workers=workers, data_path=data_path, bars=bars, bar_seconds=bar_seconds,
                             out_dir=out_dir, keeper_arguments=arguments)
    run_cluster(request, config, load_spec(network, network_config), require_record(ecosystem, network, deployments_dir),
                record_path(ecosystem.name, network.name, deployments_dir), click.echo)
