"""End-to-end fixtures: real anvil processes started and stopped by the tests, and the
project's `ape run` scripts run as a user runs them (in a subprocess)."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers_e2e import APE, PROJECT_ROOT, AnvilProcesses, WindowReplay, replay_window


@pytest.fixture
def start_anvil(tmp_path):
    """Starts anvil processes on free ports; stops each by its process id afterwards."""
    processes = AnvilProcesses(tmp_path)
    yield processes.start
    processes.stop_all()


@pytest.fixture(scope="session")
def window_replay(tmp_path_factory) -> WindowReplay:
    """One replay of the 90-bar window for the session (the truth and referee tests read it);
    its anvil is stopped by process id at the end."""
    folder = tmp_path_factory.mktemp("window")
    nodes = AnvilProcesses(folder)
    try:
        yield replay_window(nodes, folder)
    finally:
        nodes.stop_all()


@pytest.fixture(scope="session")
def ape_run():
    """Runs `ape run <script> ...` in the project; env values of None are removed."""

    def run(script: str, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
        environment = {
            key: value for key, value in os.environ.items() if key not in ("APE_FOUNDRY_HOST", "SEPOLIA_RPC_URL")
        }
        environment.update(env or {})
        return subprocess.run(
            [APE, "run", script, *arguments],
            cwd=PROJECT_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run
