"""The shipped alert rules: valid for promtool, and their own unit tests pass (each
alert shown quiet, then firing with its labels and annotations)."""

from __future__ import annotations

import shutil
import subprocess

from keepers import PROJECT_ROOT

RULES = PROJECT_ROOT / "monitoring" / "alerts.yml"
RULE_TESTS = PROJECT_ROOT / "monitoring" / "alerts_test.yml"


def promtool(*arguments: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: run `make setup` (installs Debian's prometheus)"
    return subprocess.run([binary, *arguments], capture_output=True, text=True, timeout=120)


def test_the_alert_rules_pass_promtool_check():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout  # issue 26 adds SentinelAdminOperationDangerous


def test_the_alert_rules_pass_their_unit_tests():
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
