"""Slither over our contracts: every finding is either fixed or triaged (excluded in
slither.config.json, or a `slither-disable-next-line` with its reason in the source).
A new finding fails the suite."""

import json
import subprocess
import sys
from pathlib import Path

import solcx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SLITHER = str(Path(sys.executable).parent / "slither")


def test_slither__no_untriaged_findings():
    # The compiler Ape uses (our solcjs adapter), not whatever `solc` is on PATH.
    compiler = solcx.install.get_executable(solcx.get_installed_solc_versions()[0])
    result = subprocess.run(
        [SLITHER, "contracts", "--solc", str(compiler), "--solc-standard-json",
         "--config-file", "slither.config.json", "--json", "-"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["success"], report.get("error")
    findings = report["results"].get("detectors", [])
    assert findings == [], "\n".join(f"{f['check']}: {f['description']}" for f in findings)
