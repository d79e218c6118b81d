"""Hostile inputs through the real entry points, as a terminal sees them: `ape run
keeper`, `ape run simulate` and `ape run backtest` in subprocesses (run side by side:
each pays Ape's start-up). Each prints one `Error:` line naming the input, no
traceback, and creates neither the store nor the report folder it was pointed at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from keepers import PROJECT_ROOT

APE = str(Path(sys.executable).parent / "ape")


def test_bad_inputs_end_in_one_line_and_write_nothing(tmp_path):
    garbage = tmp_path / "prices.csv"
    garbage.write_bytes(b"timestamp,close\n2024-01-01,1\nNaT,2\n")
    store = tmp_path / "state" / "sentinel.db"
    report = tmp_path / "report"
    local = ["--network", "local"]
    runs = {  # arguments, extra environment, what the one error line says
        "backfill": (["keeper", "--once", "--backfill", str(garbage), "--store-url", f"sqlite:///{store}", *local],
                     {}, f"--backfill: {garbage}: "),
        "kill": (["keeper", "kill", "--store-url", f"sqlite:///{store}", *local], {},
                 "kill: give either --user ID (repeatable) or --all"),
        "simulate": (["simulate", "--users", "nobody", "--out", str(report), *local], {},
                     "--user nobody: no such user"),
        "backtest": (["backtest", "--strategy", "bollinger", "--data", str(garbage), "--out", str(report)], {},
                     f"{garbage}, line 3: timestamp 'NaT' is not ISO-8601"),
    }
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("SENTINEL_") and key != "APE_FOUNDRY_HOST"}
    processes = {
        name: subprocess.Popen([APE, "run", *arguments], cwd=PROJECT_ROOT, env={**environment, **extra},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, (arguments, extra, _) in runs.items()
    }
    for name, process in processes.items():
        output = process.communicate(timeout=300)[0]
        errors = [line for line in output.splitlines() if line.startswith("Error:")]
        assert process.returncode == 1 and "Traceback" not in output, (name, output)
        assert len(errors) == 1 and runs[name][2] in errors[0], (name, output)
    assert not store.parent.exists() and not report.exists()
